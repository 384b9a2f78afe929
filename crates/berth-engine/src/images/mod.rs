//! The image service: everything behind `/images/*`.

mod archive;
pub(crate) mod changes;
mod login;
mod pull;
mod push;
pub(crate) mod remove;
mod unpack;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use berth_api::types::{
    GraphDriver, HistoryItem, ImageInspect, ImageMetadata, ImageSummary, RootFs,
};
use berth_distribution::RegistryClient;
use berth_image::metadata::ImageRecord;
use berth_image::{Digest, ImageStore, Reference};

use crate::error::{EngineError, Result};
use crate::events::EventBus;
use crate::filters::{Filters, glob_match};

pub use archive::{ImportOptions, ImportSource};
pub use berth_distribution::Platform;
pub use login::credentials_from;
pub use pull::PullOptions;
pub use push::PushOptions;

pub struct ImageService {
    store: Arc<ImageStore>,
    events: Arc<EventBus>,
    registry: RegistryClient,
    pulls: pull::PullCoordinator,
    users: std::sync::RwLock<Option<ImageUsers>>,
    layers_removed: std::sync::RwLock<Option<LayersRemoved>>,
}

/// Who uses an image: the containers created from it, as (container ID, running).
pub type ImageUsers = Arc<dyn Fn(&berth_image::Digest) -> Vec<(String, bool)> + Send + Sync>;

/// Told after an image's layers were deleted (derived caches keyed by them can go).
pub type LayersRemoved = Arc<dyn Fn() + Send + Sync>;

/// The tags and repo digests of one image.
#[derive(Debug, Clone, Default)]
struct ImageRefs {
    tags: Vec<String>,
    digests: Vec<String>,
}

/// Options of `GET /images/json`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub filters: Filters,
    pub digests: bool,
    /// API version < 1.44 also wants `VirtualSize`.
    pub legacy_virtual_size: bool,
}

impl ImageService {
    pub fn new(
        store: Arc<ImageStore>,
        events: Arc<EventBus>,
        registry: RegistryClient,
    ) -> ImageService {
        ImageService {
            store,
            events,
            registry,
            pulls: pull::PullCoordinator::default(),
            users: std::sync::RwLock::new(None),
            layers_removed: std::sync::RwLock::new(None),
        }
    }

    /// Tells the image service which containers use an image, so `rmi` and `prune`
    /// never delete an image out from under one.
    pub fn set_users(&self, users: ImageUsers) {
        *self.users.write().expect("users lock") = Some(users);
    }

    /// Registers what to do after layers were deleted: the micro-VM runtime drops the
    /// root images it built from them.
    pub fn set_layers_removed(&self, hook: LayersRemoved) {
        *self.layers_removed.write().expect("hook lock") = Some(hook);
    }

    pub(crate) fn notify_layers_removed(&self) {
        let hook = self.layers_removed.read().expect("hook lock").clone();
        if let Some(hook) = hook {
            hook();
        }
    }

    pub(crate) fn users_of(&self, id: &berth_image::Digest) -> Vec<(String, bool)> {
        match &*self.users.read().expect("users lock") {
            Some(users) => users(id),
            None => Vec::new(),
        }
    }

    pub fn store(&self) -> &Arc<ImageStore> {
        &self.store
    }

    /// References grouped by image, in docker's familiar form.
    fn refs_by_image(&self) -> Result<BTreeMap<Digest, ImageRefs>> {
        let mut by: BTreeMap<Digest, ImageRefs> = BTreeMap::new();
        for (r, id) in self.store.references()? {
            let e = by.entry(id).or_default();
            if r.digest().is_some() {
                e.digests.push(r.familiar());
            } else {
                e.tags.push(r.familiar());
            }
        }
        Ok(by)
    }

    fn summary(
        &self,
        rec: &ImageRecord,
        refs: Option<&ImageRefs>,
        legacy: bool,
    ) -> Result<ImageSummary> {
        let cfg = self.store.config(&rec.id)?;
        let labels = cfg.config.as_ref().and_then(|c| c.labels.clone());
        let ImageRefs { tags, digests } = refs.cloned().unwrap_or_default();
        Ok(ImageSummary {
            containers: -1,
            created: cfg.created_unix(),
            id: rec.id.to_string(),
            labels,
            parent_id: rec.parent.map(|p| p.to_string()).unwrap_or_default(),
            repo_digests: digests,
            repo_tags: tags,
            shared_size: -1,
            size: rec.size as i64,
            virtual_size: legacy.then_some(rec.size as i64),
        })
    }

    pub fn list(&self, opts: &ListOptions) -> Result<Vec<ImageSummary>> {
        let f = &opts.filters;
        f.validate(&["dangling", "label", "before", "since", "reference", "until"])?;
        let dangling = f.bool("dangling")?;
        let before = f
            .get("before")
            .iter()
            .map(|n| self.created_of(n))
            .collect::<Result<Vec<_>>>()?;
        let since = f
            .get("since")
            .iter()
            .map(|n| self.created_of(n))
            .collect::<Result<Vec<_>>>()?;
        let refs = self.refs_by_image()?;
        let records = self.store.images()?;
        let parents: HashSet<Digest> = records.iter().filter_map(|r| r.parent).collect();
        let mut out = Vec::new();
        for rec in &records {
            let r = refs.get(&rec.id);
            let has_tags = r.is_some_and(|r| !r.tags.is_empty());
            // Without -a, intermediate images (untagged parents of other images) are hidden.
            if !opts.all && !has_tags && parents.contains(&rec.id) {
                continue;
            }
            if let Some(d) = dangling
                && d == has_tags
            {
                continue;
            }
            let mut s = self.summary(rec, r, opts.legacy_virtual_size)?;
            if !f.get("reference").is_empty() {
                let keep: Vec<String> = s
                    .repo_tags
                    .iter()
                    .filter(|t| f.get("reference").iter().any(|p| reference_matches(p, t)))
                    .cloned()
                    .collect();
                if keep.is_empty() {
                    continue;
                }
                s.repo_tags = keep;
            }
            let labels = s.labels.clone().unwrap_or_default();
            if !f.match_labels("label", &labels) {
                continue;
            }
            if before.iter().any(|&t| s.created >= t) || since.iter().any(|&t| s.created <= t) {
                continue;
            }
            out.push(s);
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    fn created_of(&self, name: &str) -> Result<i64> {
        let rec = self.store.resolve(name)?;
        Ok(self.store.config(&rec.id)?.created_unix())
    }

    pub fn inspect(&self, name: &str, legacy_virtual_size: bool) -> Result<ImageInspect> {
        let rec = self.store.resolve(name)?;
        let cfg = self.store.config(&rec.id)?;
        let refs = self.refs_by_image()?;
        let ImageRefs { tags, digests } = refs.get(&rec.id).cloned().unwrap_or_default();
        let lower: Vec<String> = rec
            .chain_ids
            .iter()
            .rev()
            .map(|c| self.store.layer_dir(c).display().to_string())
            .collect();
        let mut data = BTreeMap::new();
        if !lower.is_empty() {
            data.insert("LowerDir".to_string(), lower.join(":"));
        }
        let extra_str = |k: &str| {
            cfg.extra
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let last_tag_time = chrono::DateTime::from_timestamp(rec.last_tag_time, 0)
            .filter(|_| rec.last_tag_time > 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
        Ok(ImageInspect {
            id: rec.id.to_string(),
            repo_tags: tags,
            repo_digests: digests,
            parent: rec.parent.map(|p| p.to_string()).unwrap_or_default(),
            comment: cfg
                .history
                .last()
                .and_then(|h| h.comment.clone())
                .unwrap_or_default(),
            created: cfg
                .created
                .clone()
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            docker_version: extra_str("docker_version"),
            author: cfg.author.clone().unwrap_or_default(),
            config: serde_json::to_value(cfg.config.clone().unwrap_or_default())
                .unwrap_or_default(),
            architecture: cfg.architecture.clone(),
            variant: cfg.variant.clone(),
            os: cfg.os.clone(),
            os_version: cfg.os_version.clone(),
            size: rec.size as i64,
            virtual_size: legacy_virtual_size.then_some(rec.size as i64),
            graph_driver: GraphDriver {
                data,
                name: "overlay".into(),
            },
            root_fs: RootFs {
                kind: cfg.rootfs.kind.clone(),
                layers: cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect(),
            },
            metadata: ImageMetadata { last_tag_time },
        })
    }

    /// `GET /images/{name}/history`: newest first, layer sizes on the entries that made a layer.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let rec = self.store.resolve(name)?;
        let cfg = self.store.config(&rec.id)?;
        let tags = self
            .store
            .references_of(&rec.id)?
            .iter()
            .filter(|r| r.tag().is_some())
            .map(|r| r.familiar())
            .collect::<Vec<_>>();
        let mut layer_sizes = rec
            .chain_ids
            .iter()
            .map(|c| self.store.layer(c).map(|l| l.map(|l| l.size).unwrap_or(0)));
        let mut items = Vec::new();
        let history = if cfg.history.is_empty() {
            // Images without history get one entry per layer, as docker shows them.
            cfg.rootfs
                .diff_ids
                .iter()
                .map(|_| berth_image::config::History::default())
                .collect()
        } else {
            cfg.history.clone()
        };
        for h in &history {
            let size = if h.empty_layer {
                0
            } else {
                layer_sizes.next().transpose()?.unwrap_or(0)
            };
            items.push(HistoryItem {
                id: "<missing>".into(),
                created: h
                    .created
                    .as_deref()
                    .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                    .map(|t| t.timestamp())
                    .unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: None,
                size: size as i64,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = rec.id.to_string();
            top.tags = (!tags.is_empty()).then_some(tags);
        }
        Ok(items)
    }

    /// `POST /images/{name}/tag?repo=&tag=`.
    pub fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let rec = self.store.resolve(name)?;
        let target = match tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_string(),
        };
        let reference = Reference::parse_normalized(&target)
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        if reference.digest().is_some() {
            return Err(EngineError::invalid(
                "refusing to create a tag with a digest reference",
            ));
        }
        self.store
            .tag(&rec.id, &reference, chrono::Utc::now().timestamp())?;
        self.events
            .image("tag", &rec.id.to_string(), Some(&reference.familiar()));
        Ok(())
    }

    /// Registers a complete image and points `reference` at it (load, import, builtin).
    fn commit_image(
        &self,
        config: &Digest,
        manifest: Option<Digest>,
        reference: Option<&Reference>,
    ) -> Result<ImageRecord> {
        let rec = self.store.add_image(config, manifest, None)?;
        if let Some(r) = reference {
            self.store.tag(&rec.id, r, chrono::Utc::now().timestamp())?;
        }
        Ok(rec)
    }

    /// Total unpacked size of every layer, for `system df`.
    pub fn layers_size(&self) -> Result<u64> {
        Ok(self.store.metadata().layers()?.iter().map(|l| l.size).sum())
    }

    /// All images as `system df` lists them.
    pub fn disk_usage(&self) -> Result<Vec<ImageSummary>> {
        let refs = self.refs_by_image()?;
        let layers: BTreeMap<Digest, u64> = self
            .store
            .metadata()
            .layers()?
            .into_iter()
            .map(|l| (l.chain_id, l.size))
            .collect();
        let records = self.store.images()?;
        let mut users: BTreeMap<Digest, usize> = BTreeMap::new();
        for r in &records {
            for c in &r.chain_ids {
                *users.entry(*c).or_default() += 1;
            }
        }
        let mut out = Vec::new();
        for rec in &records {
            let mut s = self.summary(rec, refs.get(&rec.id), false)?;
            s.shared_size = rec
                .chain_ids
                .iter()
                .filter(|c| users[*c] > 1)
                .map(|c| layers.get(c).copied().unwrap_or(0) as i64)
                .sum();
            s.containers = 0;
            out.push(s);
        }
        Ok(out)
    }
}

/// `reference=` filter: a pattern against the familiar `name:tag`, or against the name
/// alone when the pattern has no tag (a `:` before a `/` is a registry port, not a tag).
fn reference_matches(pattern: &str, familiar_tag: &str) -> bool {
    if glob_match(pattern, familiar_tag) {
        return true;
    }
    let pattern_has_tag = pattern
        .rfind(':')
        .is_some_and(|i| !pattern[i + 1..].contains('/'));
    match familiar_tag.rsplit_once(':') {
        Some((name, _)) if !pattern_has_tag => glob_match(pattern, name),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filter() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("busybox:1", "busybox:latest"));
        assert!(!reference_matches("alpine", "busybox:latest"));
        assert!(reference_matches(
            "127.0.0.1:5000/team/app",
            "127.0.0.1:5000/team/app:1.0"
        ));
        assert!(!reference_matches(
            "127.0.0.1:5000/team/app:2",
            "127.0.0.1:5000/team/app:1.0"
        ));
    }
}
