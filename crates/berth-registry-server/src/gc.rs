//! Garbage collection (`berth-registry gc`): mark every blob reachable from a manifest of
//! any repository, then sweep the blobs nothing marked — but only those older than a grace
//! period, so it is safe while the registry serves pushes.
//!
//! Marked (kept):
//! - every manifest with a revision link, and what it references: config, layers, child
//!   manifests (recursively) and its subject;
//! - every blob whose `_layers` link was written within the grace period (a push or mount in
//!   progress links blobs before its manifest arrives);
//! - every blob linked in a repository with an upload session in progress;
//! - every blob written after the grace cutoff, and links written while gc runs (they are
//!   rescanned just before the sweep).
//!
//! `_layers` links to swept blobs are removed with them; upload sessions older than
//! `upload_expiry` are purged.
//!
//! Each candidate is stat'ed again right before it is deleted, so a push that commits the
//! same bytes meanwhile (committing rewrites the blob, refreshing its time) keeps it. What
//! remains is a narrow window: a cross-repository mount of an old, unreferenced blob between
//! that last check and the delete leaves a link to nothing, which reads as `BLOB_UNKNOWN`
//! and makes the client upload the blob again.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_image::Digest;
use futures::TryStreamExt as _;
use serde_json::Value;

use crate::storage::keys::{self, LinkKind};
use crate::storage::{Driver, Meta, Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    /// Unreferenced blobs younger than this are kept.
    pub grace: Duration,
    /// Only report what would be deleted.
    pub dry_run: bool,
    /// Upload sessions older than this are abandoned: purged, and no longer protect the
    /// blobs of their repository.
    pub upload_expiry: Duration,
}

pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);
pub const DEFAULT_UPLOAD_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: DEFAULT_GRACE,
            dry_run: false,
            upload_expiry: DEFAULT_UPLOAD_EXPIRY,
        }
    }
}

/// What a run found and did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub dry_run: bool,
    /// Blobs in storage.
    pub blobs: usize,
    /// Blobs kept because something references them.
    pub marked: usize,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub recent: usize,
    /// Swept blobs and their sizes.
    pub deleted: Vec<(Digest, u64)>,
    /// `_layers` links removed with their blobs.
    pub links_removed: usize,
    /// Abandoned upload sessions purged.
    pub uploads_purged: Vec<String>,
}

impl GcReport {
    pub fn bytes_freed(&self) -> u64 {
        self.deleted.iter().map(|(_, size)| size).sum()
    }
}

struct Link {
    key: String,
    repo: String,
    kind: LinkKind,
    digest: Digest,
    meta: Meta,
}

async fn links(driver: &dyn Driver) -> Result<Vec<Link>> {
    driver
        .walk(keys::REPOSITORIES)
        .try_filter_map(|(key, meta)| async move {
            Ok(keys::parse_link(&key).map(|(repo, kind, digest)| Link {
                repo: repo.to_string(),
                kind,
                digest,
                key: key.clone(),
                meta,
            }))
        })
        .try_collect()
        .await
}

/// The digests a manifest references: config, layers, child manifests, subject.
fn references(manifest: &[u8]) -> (Vec<Digest>, Vec<Digest>) {
    let Ok(v) = serde_json::from_slice::<Value>(manifest) else {
        return (Vec::new(), Vec::new());
    };
    let digest = |d: &Value| {
        d.get("digest")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    };
    let mut blobs: Vec<Digest> = Vec::new();
    blobs.extend(v.get("config").and_then(digest));
    blobs.extend(v.get("subject").and_then(digest));
    if let Some(layers) = v.get("layers").and_then(Value::as_array) {
        blobs.extend(layers.iter().filter_map(digest));
    }
    let children = v
        .get("manifests")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(digest).collect())
        .unwrap_or_default();
    (blobs, children)
}

struct Marker<'a> {
    driver: &'a dyn Driver,
    marked: HashSet<Digest>,
    expanded: HashSet<Digest>,
}

impl Marker<'_> {
    /// Marks a manifest and, recursively, everything it references.
    async fn manifest(&mut self, digest: Digest) -> Result<()> {
        let mut pending = vec![digest];
        while let Some(d) = pending.pop() {
            self.marked.insert(d);
            if !self.expanded.insert(d) {
                continue;
            }
            let Some(bytes) = self.driver.get(&keys::blob(&d)).await? else {
                continue;
            };
            let (blobs, children) = references(&bytes);
            self.marked.extend(blobs);
            pending.extend(children);
        }
        Ok(())
    }

    async fn links(
        &mut self,
        links: &[Link],
        recent: SystemTime,
        busy: &HashSet<String>,
    ) -> Result<()> {
        for link in links {
            match link.kind {
                LinkKind::Revision => self.manifest(link.digest).await?,
                LinkKind::Layer if link.meta.modified >= recent || busy.contains(&link.repo) => {
                    self.marked.insert(link.digest);
                }
                LinkKind::Layer => {}
            }
        }
        Ok(())
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Runs one collection over `driver`.
pub async fn collect(driver: &Arc<dyn Driver>, opts: &GcOptions) -> Result<GcReport> {
    let store_uploads = Store::new(driver.clone()).uploads().await?;
    let driver: &dyn Driver = driver.as_ref();
    let started = SystemTime::now();
    let cutoff = started.checked_sub(opts.grace).unwrap_or(UNIX_EPOCH);
    let mut report = GcReport {
        dry_run: opts.dry_run,
        ..GcReport::default()
    };

    // Upload sessions: live ones protect their repository's links, abandoned ones go.
    let expiry = secs(started).saturating_sub(opts.upload_expiry.as_secs());
    let mut busy = HashSet::new();
    for (id, info) in store_uploads {
        match info {
            Some(info) if info.started >= expiry => {
                busy.insert(info.repository);
            }
            _ => report.uploads_purged.push(id),
        }
    }

    let mut marker = Marker {
        driver,
        marked: HashSet::new(),
        expanded: HashSet::new(),
    };
    let all_links = links(driver).await?;
    marker.links(&all_links, cutoff, &busy).await?;
    // Links written while marking (a push that just finished) count too.
    let fresh: Vec<Link> = links(driver)
        .await?
        .into_iter()
        .filter(|l| l.meta.modified >= started)
        .collect();
    marker.links(&fresh, started, &busy).await?;

    let blobs: Vec<(String, Meta)> = driver.walk(keys::BLOBS).try_collect().await?;
    let mut swept = BTreeSet::new();
    for (key, meta) in blobs {
        let Some(digest) = key
            .rsplit('/')
            .next()
            .and_then(|h| Digest::from_hex(h).ok())
        else {
            continue;
        };
        report.blobs += 1;
        if marker.marked.contains(&digest) {
            report.marked += 1;
        } else if meta.modified >= cutoff {
            report.recent += 1;
        } else {
            // Written again since it was listed (a push committing the same bytes)?
            match driver.stat(&key).await? {
                None => continue,
                Some(now) if now.modified >= cutoff => {
                    report.recent += 1;
                    continue;
                }
                Some(_) => {}
            }
            if !opts.dry_run {
                driver.delete(&key).await?;
            }
            tracing::info!(%digest, size = meta.size, dry_run = opts.dry_run, "gc: blob swept");
            report.deleted.push((digest, meta.size));
            swept.insert(digest);
        }
    }
    for link in all_links
        .iter()
        .filter(|l| l.kind == LinkKind::Layer && swept.contains(&l.digest))
    {
        if !opts.dry_run {
            driver.delete(&link.key).await?;
        }
        report.links_removed += 1;
    }
    if !opts.dry_run {
        for id in &report.uploads_purged {
            driver.upload_delete(id).await?;
        }
    }
    Ok(report)
}

/// Parses durations like `90s`, `30m`, `1h`, `1h30m`, `7d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(format!("invalid duration {s:?}: unknown unit {c:?}")),
        };
        let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
    }
    if !num.is_empty() {
        return Err(format!("invalid duration {s:?}: number without a unit"));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172800));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("10m5").is_err());
    }

    #[test]
    fn references_of_manifests_and_indexes() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let m = format!(
            r#"{{"config":{{"digest":"{a}"}},"layers":[{{"digest":"{b}"}}],"subject":{{"digest":"{a}"}}}}"#
        );
        assert_eq!(references(m.as_bytes()), (vec![a, a, b], vec![]));
        let i = format!(r#"{{"manifests":[{{"digest":"{a}"}},{{"digest":"bad"}}]}}"#);
        assert_eq!(references(i.as_bytes()), (vec![], vec![a]));
        assert_eq!(references(b"not json"), (vec![], vec![]));
    }
}
