//! `DELETE /images/{name}` and `POST /images/prune`, with docker's untag-versus-delete rules.

use std::collections::HashSet;

use berth_api::types::{DeleteItem, ImagePruneReport};
use berth_image::reference::is_id_prefix;
use berth_image::{Digest, Reference};

use super::ImageService;
use crate::error::{EngineError, Result};
use crate::filters::Filters;

impl ImageService {
    /// Removes a reference or an image as `docker rmi` does:
    /// - by name: untag it; if that was the image's last tag, delete the image;
    /// - by ID: delete the image, untagging everything, which needs `force` when the
    ///   image is referenced from more than one repository.
    pub fn remove(&self, name: &str, force: bool, _no_prune: bool) -> Result<Vec<DeleteItem>> {
        let rec = self.store.resolve(name)?;
        let id = rec.id;
        let refs = self.store.references_of(&id)?;
        let by_id = is_id_prefix(name)
            && !refs
                .iter()
                .any(|r| Reference::parse_normalized(name).is_ok_and(|n| n == *r));
        let mut items = Vec::new();
        let users = self.users_of(&id);
        let container = |c: &str| c[..12.min(c.len())].to_string();
        if let Some((c, _)) = users.iter().find(|(_, running)| *running)
            && (by_id || (force && refs.iter().filter(|r| r.tag().is_some()).count() <= 1))
        {
            return Err(EngineError::conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                short_id(&id),
                container(c)
            )));
        }
        if let Some((c, _)) = users.first() {
            let last_tag = refs.iter().filter(|r| r.tag().is_some()).count() <= 1;
            if by_id && !force {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                    short_id(&id),
                    container(c)
                )));
            }
            if !by_id && last_tag && !force {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    container(c),
                    short_id(&id)
                )));
            }
        }

        if !by_id {
            let named = Reference::parse_normalized(name)
                .map_err(|e| EngineError::invalid(e.to_string()))?;
            let exact = refs.iter().find(|r| **r == named).cloned();
            if let Some(r) = exact {
                self.untag(&id, &r, &mut items)?;
                let remaining = self.store.references_of(&id)?;
                if remaining.iter().any(|r| r.tag().is_some()) {
                    return Ok(items);
                }
                // The last tag is gone: the digest references go with the image.
                for r in remaining {
                    self.untag(&id, &r, &mut items)?;
                }
            } else if !refs.is_empty() && !force {
                // Found through a digest of another reference (`name@sha256:`): as docker,
                // that removes every reference of the repository.
                for r in refs.iter().filter(|r| r.name() == named.name()) {
                    self.untag(&id, r, &mut items)?;
                }
                if !self.store.references_of(&id)?.is_empty() {
                    return Ok(items);
                }
            }
        } else if !refs.is_empty() {
            let repos: HashSet<String> = refs.iter().map(|r| r.name()).collect();
            if repos.len() > 1 && !force {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    short_id(&id)
                )));
            }
            for r in &refs {
                self.untag(&id, r, &mut items)?;
            }
        }

        if !users.is_empty() {
            // Forced: the references go, the image stays for its containers.
            return Ok(items);
        }
        if self.has_children(&id)? {
            if items.is_empty() {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                    short_id(&id)
                )));
            }
            return Ok(items);
        }
        self.delete_record(&id, &mut items)?;
        Ok(items)
    }

    fn untag(&self, id: &Digest, r: &Reference, items: &mut Vec<DeleteItem>) -> Result<()> {
        if self.store.untag(r)? {
            items.push(DeleteItem {
                untagged: Some(r.familiar()),
                deleted: None,
            });
            self.events
                .image("untag", &id.to_string(), Some(&r.familiar()));
        }
        Ok(())
    }

    fn has_children(&self, id: &Digest) -> Result<bool> {
        Ok(self.store.images()?.iter().any(|r| r.parent == Some(*id)))
    }

    fn delete_record(&self, id: &Digest, items: &mut Vec<DeleteItem>) -> Result<u64> {
        let store = self.store.clone();
        let id = *id;
        let removed = store.delete_image(&id)?;
        items.push(DeleteItem {
            untagged: None,
            deleted: Some(id.to_string()),
        });
        let mut freed = 0;
        for layer in removed.iter().rev() {
            freed += layer.size;
            items.push(DeleteItem {
                untagged: None,
                deleted: Some(layer.chain_id.to_string()),
            });
        }
        self.events.image("delete", &id.to_string(), None);
        if !removed.is_empty() {
            self.notify_layers_removed();
        }
        Ok(freed)
    }

    /// `POST /images/prune`: dangling images, or with `dangling=false` every unused image.
    pub fn prune(&self, filters: &Filters) -> Result<ImagePruneReport> {
        filters.validate(&["dangling", "until", "label", "label!"])?;
        let only_dangling = filters.bool("dangling")?.unwrap_or(true);
        let until = match filters.get("until") {
            [] => None,
            [t] => Some(parse_until(t)?),
            _ => {
                return Err(EngineError::invalid(
                    "invalid filter 'until': only one value allowed",
                ));
            }
        };
        let mut deleted = Vec::new();
        let mut reclaimed = 0;
        // Repeat: deleting a child can make its parent prunable.
        loop {
            let mut progressed = false;
            for rec in self.store.images()? {
                let refs = self.store.references_of(&rec.id)?;
                let tagged = refs.iter().any(|r| r.tag().is_some());
                if only_dangling && tagged {
                    continue;
                }
                let cfg = self.store.config(&rec.id)?;
                if until.is_some_and(|u| cfg.created_unix() >= u) {
                    continue;
                }
                let labels = cfg.labels();
                if !filters.match_labels("label", &labels) {
                    continue;
                }
                if !filters.get("label!").is_empty()
                    && filters
                        .get("label!")
                        .iter()
                        .any(|l| match l.split_once('=') {
                            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                            None => labels.contains_key(l),
                        })
                {
                    continue;
                }
                if self.has_children(&rec.id)? || !self.users_of(&rec.id).is_empty() {
                    continue;
                }
                for r in &refs {
                    self.untag(&rec.id, r, &mut deleted)?;
                }
                reclaimed += self.delete_record(&rec.id, &mut deleted)?;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        self.events.publish(
            "image",
            "prune",
            "",
            [("reclaimed".to_string(), reclaimed.to_string())].into(),
        );
        Ok(ImagePruneReport {
            images_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: reclaimed,
        })
    }
}

fn short_id(id: &Digest) -> String {
    id.short()
}

/// `until` as docker accepts it: a unix timestamp, an RFC 3339 time, or a duration (`24h`) before now.
pub(crate) fn parse_until(s: &str) -> Result<i64> {
    if let Ok(secs) = s.split('.').next().unwrap_or_default().parse::<i64>() {
        return Ok(secs);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    let now = chrono::Utc::now().timestamp();
    parse_go_duration(s)
        .map(|d| now - d)
        .ok_or_else(|| EngineError::invalid(format!("invalid time value {s:?}")))
}

/// Go duration strings (`1h30m`, `10s`, `2h`) in whole seconds.
pub(crate) fn parse_go_duration(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() || n == 'µ' {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let v: f64 = num.parse().ok()?;
        num.clear();
        total += v * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        any = true;
    }
    (any && num.is_empty()).then_some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("1h30m"), Some(5400));
        assert_eq!(parse_go_duration("10s"), Some(10));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_until("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_until("2024-01-02T03:04:05Z").unwrap(), 1_704_164_645);
    }
}
