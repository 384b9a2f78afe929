//! The volume service: named and anonymous volumes as dockerd's `local` driver keeps them.
//!
//! On disk, under the root the engine gives (`<data_root>/volumes`):
//!
//! ```text
//! <root>/<name>/_data         the volume's content (or the mount point of its driver options)
//! <root>/<name>/volume.json   name, driver, labels, options, creation time; written atomically
//! ```
//!
//! Which containers use a volume is kept in memory: the container service calls
//! [`VolumeService::acquire`] for every container it knows, at daemon start too.

mod copy;
mod mount;
mod store;
mod types;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{EngineError, Result};
use crate::events::EventBus;
use crate::filters::Filters;

pub use mount::MountOpts;
pub use types::{
    ANONYMOUS_LABEL, CreateOptions, LOCAL_DRIVER, UsageData, Volume, VolumeList, VolumePruneReport,
    random_name, validate_driver_opts, validate_name,
};

use store::Record;

/// One volume: its record and what uses it right now.
struct Entry {
    rec: Record,
    /// Containers that reference the volume (created, running or stopped).
    refs: BTreeSet<String>,
    /// Containers that have it mounted (running), with a count per container.
    mounts: BTreeMap<String, u32>,
    /// Whether the driver-option mount is in place.
    mounted: bool,
}

pub struct VolumeService {
    root: PathBuf,
    events: Arc<EventBus>,
    volumes: Mutex<BTreeMap<String, Entry>>,
    pruning: AtomicBool,
}

/// Resets the prune flag when a prune ends, however it ends.
struct PruneGuard<'a>(&'a AtomicBool);

impl Drop for PruneGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

fn no_such_volume(name: &str) -> EngineError {
    EngineError::not_found(format!("get {name}: no such volume"))
}

fn io_error(what: &str, e: std::io::Error) -> EngineError {
    EngineError::internal(format!("{what}: {e}"))
}

impl VolumeService {
    /// Opens (creating) the volume root and loads every volume in it. Driver-option mounts
    /// left behind by a crash are undone, as dockerd does at start.
    pub fn open(root: PathBuf, events: Arc<EventBus>) -> Result<VolumeService> {
        let records = store::load_all(&root)?;
        let mut volumes = BTreeMap::new();
        for rec in records {
            if MountOpts::from_driver_opts(rec.options.as_ref()).is_some() {
                let _ = mount::unmount(&store::data_dir(&root, &rec.name));
            }
            volumes.insert(
                rec.name.clone(),
                Entry {
                    rec,
                    refs: BTreeSet::new(),
                    mounts: BTreeMap::new(),
                    mounted: false,
                },
            );
        }
        Ok(VolumeService {
            root,
            events,
            volumes: Mutex::new(volumes),
            pruning: AtomicBool::new(false),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.volumes.lock().expect("volume table lock")
    }

    fn data_dir(&self, name: &str) -> PathBuf {
        store::data_dir(&self.root, name)
    }

    fn to_api(&self, e: &Entry) -> Volume {
        Volume {
            created_at: types::rfc3339_local(e.rec.created_at),
            driver: e.rec.driver.clone(),
            labels: e.rec.labels.clone(),
            mountpoint: self.data_dir(&e.rec.name).display().to_string(),
            name: e.rec.name.clone(),
            options: e.rec.options.clone(),
            scope: "local".into(),
            usage_data: None,
        }
    }

    fn event(&self, action: &str, name: &str, attrs: &[(&str, &str)]) {
        let attrs = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.events.volume(action, name, attrs);
    }

    /// `POST /volumes/create`. A name that exists returns that volume unchanged (dockerd's
    /// behaviour); no name makes an anonymous volume with a random 64-hex name.
    pub fn create(&self, opts: CreateOptions) -> Result<Volume> {
        let anonymous = opts.name.as_deref().is_none_or(str::is_empty);
        let name = match opts.name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => random_name(),
        };
        let prefix = |e: EngineError| EngineError::new(e.kind, format!("create {name}: {e}"));
        let driver = opts
            .driver
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| LOCAL_DRIVER.to_string());
        if driver != LOCAL_DRIVER {
            return Err(EngineError::not_found(format!(
                "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        validate_name(&name).map_err(prefix)?;
        let driver_opts = opts.driver_opts.filter(|o| !o.is_empty());
        if let Some(o) = &driver_opts {
            validate_driver_opts(o).map_err(prefix)?;
        }
        let mut labels = opts.labels.unwrap_or_default();
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
        }
        let mut table = self.lock();
        if let Some(e) = table.get(&name) {
            return Ok(self.to_api(e));
        }
        let rec = Record {
            name: name.clone(),
            driver,
            labels,
            options: driver_opts,
            created_at: chrono::Utc::now(),
        };
        store::create(&self.root, &rec).map_err(prefix)?;
        let entry = Entry {
            rec,
            refs: BTreeSet::new(),
            mounts: BTreeMap::new(),
            mounted: false,
        };
        let api = self.to_api(&entry);
        table.insert(name.clone(), entry);
        drop(table);
        self.event("create", &name, &[("driver", LOCAL_DRIVER)]);
        Ok(api)
    }

    /// `GET /volumes/{name}`.
    pub fn inspect(&self, name: &str) -> Result<Volume> {
        let table = self.lock();
        let e = table.get(name).ok_or_else(|| no_such_volume(name))?;
        Ok(self.to_api(e))
    }

    /// True when a volume of that name exists.
    pub fn exists(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    /// `GET /volumes`: filters `name` (substring, `^`/`$` anchors), `driver`, `label`
    /// (`key` or `key=value`) and `dangling` (used by no container). Sorted by name.
    pub fn list(&self, filters: &Filters) -> Result<VolumeList> {
        filters.validate(&["dangling", "name", "driver", "label"])?;
        let dangling = filters.bool("dangling")?;
        let table = self.lock();
        let volumes = table
            .values()
            .filter(|e| {
                let names = filters.get("name");
                let drivers = filters.get("driver");
                (names.is_empty() || names.iter().any(|p| types::name_matches(p, &e.rec.name)))
                    && (drivers.is_empty() || drivers.contains(&e.rec.driver))
                    && filters
                        .get("label")
                        .iter()
                        .all(|l| types::label_matches(l, &e.rec.labels))
                    && dangling.is_none_or(|d| d == e.refs.is_empty())
            })
            .map(|e| self.to_api(e))
            .collect();
        Ok(VolumeList {
            volumes,
            warnings: None,
        })
    }

    /// `DELETE /volumes/{name}`. A volume some container uses is refused (409) even with
    /// `force`; `force` makes a missing volume a success and purges the record when removing
    /// the data fails.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        let mut table = self.lock();
        let Some(e) = table.get(name) else {
            return if force {
                Ok(())
            } else {
                Err(no_such_volume(name))
            };
        };
        if !e.refs.is_empty() {
            let ids: Vec<&str> = e.refs.iter().map(String::as_str).collect();
            return Err(EngineError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                ids.join(", ")
            )));
        }
        let result = self.destroy(e);
        if result.is_err() && !force {
            return result;
        }
        table.remove(name);
        drop(table);
        self.event("destroy", name, &[("driver", LOCAL_DRIVER)]);
        Ok(())
    }

    /// Unmounts and deletes a volume's directory (the caller drops the entry).
    fn destroy(&self, e: &Entry) -> Result<()> {
        let data = self.data_dir(&e.rec.name);
        if e.mounted || MountOpts::from_driver_opts(e.rec.options.as_ref()).is_some() {
            mount::unmount(&data)
                .map_err(|err| io_error(&format!("remove {}: unmount", e.rec.name), err))?;
        }
        store::remove(&self.root, &e.rec.name)
    }

    /// `POST /volumes/prune` (API 1.42 semantics): unused local volumes without driver
    /// options; only anonymous ones unless `all=true`; `label` and `label!` filters.
    pub fn prune(&self, filters: &Filters) -> Result<VolumePruneReport> {
        if self.pruning.swap(true, Ordering::SeqCst) {
            return Err(EngineError::conflict(
                "a prune operation is already running",
            ));
        }
        let _guard = PruneGuard(&self.pruning);
        filters.validate(&["label", "label!", "all"])?;
        let all = match filters.get("all") {
            [] => false,
            [v] => parse_go_bool(v).ok_or_else(|| {
                EngineError::invalid(format!(
                    "invalid filter 'all': strconv.ParseBool: parsing {}: invalid syntax",
                    types::go_quote(v)
                ))
            })?,
            many => {
                return Err(EngineError::invalid(format!(
                    "invalid filter 'all=[{}]': only one value is expected",
                    many.join(" ")
                )));
            }
        };
        let mut report = VolumePruneReport {
            volumes_deleted: Vec::new(),
            space_reclaimed: 0,
        };
        let mut table = self.lock();
        let victims: Vec<String> = table
            .values()
            .filter(|e| {
                e.refs.is_empty()
                    && e.rec.driver == LOCAL_DRIVER
                    && e.rec.options.as_ref().is_none_or(BTreeMap::is_empty)
                    && (all || e.rec.labels.contains_key(ANONYMOUS_LABEL))
                    && filters
                        .get("label")
                        .iter()
                        .all(|l| types::label_matches(l, &e.rec.labels))
                    && !filters
                        .get("label!")
                        .iter()
                        .any(|l| types::label_matches(l, &e.rec.labels))
            })
            .map(|e| e.rec.name.clone())
            .collect();
        for name in victims {
            let Some(e) = table.get(&name) else { continue };
            let size = copy::dir_size(&self.data_dir(&name));
            if let Err(err) = self.destroy(e) {
                tracing::warn!(volume = %name, error = %err, "prune: could not remove volume");
                continue;
            }
            table.remove(&name);
            self.event("destroy", &name, &[("driver", LOCAL_DRIVER)]);
            report.space_reclaimed += size;
            report.volumes_deleted.push(name);
        }
        drop(table);
        let reclaimed = report.space_reclaimed.to_string();
        self.event("prune", "", &[("reclaimed", &reclaimed)]);
        Ok(report)
    }

    /// `system df`: local volumes without driver options, with their size and how many
    /// containers use them.
    pub fn disk_usage(&self) -> Result<Vec<Volume>> {
        let table = self.lock();
        let mut out = Vec::new();
        for e in table.values() {
            if e.rec.driver != LOCAL_DRIVER || e.rec.options.as_ref().is_some_and(|o| !o.is_empty())
            {
                continue;
            }
            let mut v = self.to_api(e);
            v.usage_data = Some(UsageData {
                ref_count: e.refs.len() as i64,
                size: copy::dir_size(&self.data_dir(&e.rec.name)) as i64,
            });
            out.push(v);
        }
        Ok(out)
    }

    /// Records that `container_id` uses the volume (kept until [`VolumeService::release`]);
    /// such a volume cannot be removed or pruned. Idempotent.
    pub fn acquire(&self, name: &str, container_id: &str) -> Result<()> {
        let mut table = self.lock();
        let e = table.get_mut(name).ok_or_else(|| no_such_volume(name))?;
        e.refs.insert(container_id.to_string());
        Ok(())
    }

    /// Drops `container_id`'s reference (a removed container). Unknown names are ignored.
    pub fn release(&self, name: &str, container_id: &str) {
        if let Some(e) = self.lock().get_mut(name) {
            e.refs.remove(container_id);
        }
    }

    /// The containers that reference the volume.
    pub fn users(&self, name: &str) -> Result<Vec<String>> {
        let table = self.lock();
        let e = table.get(name).ok_or_else(|| no_such_volume(name))?;
        Ok(e.refs.iter().cloned().collect())
    }

    /// The host directory to bind into a container: `<root>/<name>/_data`, with the
    /// driver-option mount made first if the volume has one and it is not in place yet.
    pub fn mount_point(&self, name: &str) -> Result<PathBuf> {
        let mut table = self.lock();
        let e = table.get_mut(name).ok_or_else(|| no_such_volume(name))?;
        self.ensure_mounted(e)?;
        Ok(self.data_dir(name))
    }

    fn ensure_mounted(&self, e: &mut Entry) -> Result<()> {
        if e.mounted {
            return Ok(());
        }
        if let Some(opts) = MountOpts::from_driver_opts(e.rec.options.as_ref()) {
            let data = self.data_dir(&e.rec.name);
            std::fs::create_dir_all(&data)
                .map_err(|err| io_error(&format!("mount {}", e.rec.name), err))?;
            mount::mount(&opts, &data).map_err(EngineError::internal)?;
            e.mounted = true;
        }
        Ok(())
    }

    /// A container starts with the volume at `destination`: makes the driver-option mount if
    /// needed, counts the use, emits docker's `mount` event, and returns the host path.
    pub fn mount(
        &self,
        name: &str,
        container_id: &str,
        destination: &str,
        read_write: bool,
    ) -> Result<PathBuf> {
        let mut table = self.lock();
        let e = table.get_mut(name).ok_or_else(|| no_such_volume(name))?;
        self.ensure_mounted(e)?;
        *e.mounts.entry(container_id.to_string()).or_default() += 1;
        drop(table);
        let rw = read_write.to_string();
        self.event(
            "mount",
            name,
            &[
                ("container", container_id),
                ("destination", destination),
                ("driver", LOCAL_DRIVER),
                ("propagation", ""),
                ("read/write", &rw),
            ],
        );
        Ok(self.data_dir(name))
    }

    /// The container stopped: uncounts one [`VolumeService::mount`], emits `unmount`, and
    /// undoes the driver-option mount when no container has the volume mounted any more.
    pub fn unmount(&self, name: &str, container_id: &str) -> Result<()> {
        let mut table = self.lock();
        let e = table.get_mut(name).ok_or_else(|| no_such_volume(name))?;
        if let Some(n) = e.mounts.get_mut(container_id) {
            *n -= 1;
            if *n == 0 {
                e.mounts.remove(container_id);
            }
        }
        let mut result = Ok(());
        if e.mounts.is_empty() && e.mounted {
            result = mount::unmount(&self.data_dir(name))
                .map_err(|err| io_error(&format!("unmount {name}"), err));
            e.mounted = false;
        }
        drop(table);
        self.event(
            "unmount",
            name,
            &[("container", container_id), ("driver", LOCAL_DRIVER)],
        );
        result
    }

    /// Docker's copy-up: copies `source_dir` (the image's content at the mount destination)
    /// into the volume when the volume is empty, keeping owners, modes, times, symlinks, hard
    /// links, xattrs and device nodes. Returns whether anything was copied (false for a
    /// non-empty volume or a missing/non-directory source). Driver-option volumes are
    /// mounted first, so the copy lands in the mounted filesystem.
    pub fn populate_from(&self, name: &str, source_dir: &Path) -> Result<bool> {
        let data = self.mount_point(name)?;
        match std::fs::symlink_metadata(source_dir) {
            Ok(m) if m.is_dir() => {}
            _ => return Ok(false),
        }
        let empty =
            copy::is_empty_dir(&data).map_err(|e| io_error(&format!("copy-up {name}"), e))?;
        if !empty {
            return Ok(false);
        }
        copy::copy_dir_contents(source_dir, &data).map_err(|e| {
            io_error(
                &format!(
                    "copying {} into volume {name}",
                    copy::display_name(source_dir)
                ),
                e,
            )
        })?;
        Ok(true)
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
