use std::path::Path;

use anyhow::Context;
use libcontainer::container::{Container, ContainerStatus};

use crate::cli::Delete;
use berth_runtime::cgroupfs::CgroupDirs;

pub fn delete(root: &Path, args: &Delete) -> anyhow::Result<()> {
    let mut container = crate::state::load(root, &args.id)?;
    remove(&mut container, args.force)
}

/// Deletes `container` (`force`: a running one is killed first).
pub fn remove(container: &mut Container, force: bool) -> anyhow::Result<()> {
    container
        .refresh_status()
        .context("read the container's status")?;
    if delete_stopped(container)? {
        return Ok(());
    }
    let cgroup_path = container.spec().ok().map(|config| config.cgroup_path);
    container
        .delete(force)
        .with_context(|| format!("delete container {}", container.id()))?;
    // libcgroups removes the controllers' directories; the launcher also made one in
    // each named hierarchy (systemd's).
    if let Some(path) = cgroup_path {
        CgroupDirs::locate(&path)?.remove()?;
    }
    Ok(())
}

/// The common case, without libcontainer's cgroup manager (whose setup reads the
/// mount table a dozen times, ~1 ms): a stopped container with no hooks to run and no
/// systemd or Intel RDT state loses its cgroup directories and its state. Returns
/// false when the container needs libcontainer's full delete.
fn delete_stopped(container: &Container) -> anyhow::Result<bool> {
    if container.status() != ContainerStatus::Stopped
        || container.systemd()
        || container.intel_rdt_dir().is_some()
        || container.intel_rdt_monitoring_dir().is_some()
    {
        return Ok(false);
    }
    let config = container.spec().context("load the container's config")?;
    if config.hooks.is_some() {
        return Ok(false);
    }
    CgroupDirs::locate(&config.cgroup_path)?.remove()?;
    std::fs::remove_dir_all(&container.root)
        .with_context(|| format!("remove {}", container.root.display()))?;
    Ok(true)
}
