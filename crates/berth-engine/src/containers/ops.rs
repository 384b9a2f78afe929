//! `rename` and `container prune`.

use std::sync::Arc;

use super::ContainerService;
use super::names;
use super::record::Status;
use crate::error::{EngineError, Result};
use crate::filters::Filters;

/// `POST /containers/prune` result.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    pub containers_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

impl ContainerService {
    /// `POST /containers/{id}/rename?name=`.
    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let c = self.get(name)?;
        names::validate(new_name).map_err(EngineError::invalid)?;
        let new_full = format!("/{}", new_name.trim_start_matches('/'));
        let old = c.record().name;
        if old == new_full {
            return Err(EngineError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        {
            let all = self.containers.read().expect("containers lock");
            if let Some(other) = all
                .values()
                .find(|o| o.id != c.id && o.record.lock().expect("record lock").name == new_full)
            {
                return Err(EngineError::conflict(format!(
                    "Conflict. The container name \"{new_full}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                )));
            }
            c.update(|r| r.name = new_full.clone())?;
        }
        self.event("rename", &c.record(), &[("oldName", old)]);
        Ok(())
    }

    /// `POST /containers/prune`: removes every stopped container matching the filters
    /// (`until`, `label`, `label!`).
    pub async fn prune(self: &Arc<Self>, filters: &Filters) -> Result<PruneReport> {
        filters.validate(&["until", "label", "label!"])?;
        let until = match filters.get("until").first() {
            Some(text) => Some(crate::images::remove::parse_until(text)?),
            None => None,
        };
        let mut deleted = Vec::new();
        let mut reclaimed = 0;
        for c in self.all() {
            let record = c.record();
            if !matches!(
                record.state.status,
                Status::Exited | Status::Created | Status::Dead
            ) {
                continue;
            }
            let labels: std::collections::BTreeMap<String, String> = record
                .config
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect();
            if !filters.match_labels("label", &labels) {
                continue;
            }
            if filters
                .get("label!")
                .iter()
                .any(|l| label_matches(l, &labels))
            {
                continue;
            }
            if let Some(until) = until
                && chrono::DateTime::parse_from_rfc3339(&record.created)
                    .is_ok_and(|t| t.timestamp() >= until)
            {
                continue;
            }
            let size = super::view::dir_size(&c.dir.join("upper"));
            if self.remove_container(&c, false).await.is_ok() {
                reclaimed += size;
                deleted.push(record.id.clone());
            }
        }
        self.events
            .publish("container", "prune", "", Default::default());
        Ok(PruneReport {
            containers_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: reclaimed,
        })
    }
}

fn label_matches(filter: &str, labels: &std::collections::BTreeMap<String, String>) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}
