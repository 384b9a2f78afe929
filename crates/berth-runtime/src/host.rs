//! The only I/O in this crate: looking up the facts about the running host that
//! [`crate::SpecInputs`] carries, for callers that want the real ones.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::inputs::{DeviceKind, HostDevice, HostFacts, KernelVersion};

/// This host's kernel, cgroup layout, capabilities and CPUs.
pub fn detect_host_facts() -> HostFacts {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let defaults = HostFacts::default();
    HostFacts {
        kernel: read("/proc/sys/kernel/osrelease").and_then(|r| KernelVersion::parse(&r)),
        cgroup_v2: Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
        last_cap: read("/proc/sys/kernel/cap_last_cap")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(defaults.last_cap),
        num_cpus: std::thread::available_parallelism()
            .ok()
            .and_then(|n| u32::try_from(n.get()).ok()),
        ..defaults
    }
}

/// The `cgroup.procs` of the process whose `/proc/<pid>/cgroup` is `proc_cgroup`: in
/// the unified hierarchy, or in the first v1 one, under the cgroupfs mount `cgroupfs`.
pub fn own_cgroup_procs(cgroupfs: &Path, proc_cgroup: &str) -> Option<std::path::PathBuf> {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let relative = path.trim_start_matches('/');
        let dir = if controllers.is_empty() {
            if !cgroupfs.join("cgroup.controllers").exists() {
                continue;
            }
            cgroupfs.join(relative)
        } else if let Some(controller) = controllers.split(',').find(|c| !c.starts_with("name=")) {
            cgroupfs.join(controller).join(relative)
        } else {
            continue;
        };
        let procs = dir.join("cgroup.procs");
        if procs.exists() {
            return Some(procs);
        }
    }
    None
}

/// The device nodes under `dev` (normally `/dev`), skipping the pseudo-terminal,
/// shared-memory and message-queue trees that containers get their own of.
pub fn scan_devices(dev: &Path) -> Vec<HostDevice> {
    let mut found = Vec::new();
    scan(dev, &mut found, 0);
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

fn scan(dir: &Path, found: &mut Vec<HostDevice>, depth: u32) {
    if depth > 4 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let file_type = meta.file_type();
        if file_type.is_dir() {
            let name = entry.file_name();
            if !matches!(name.to_str(), Some("pts" | "shm" | "mqueue" | "fd")) {
                scan(&path, found, depth + 1);
            }
            continue;
        }
        let kind = if file_type.is_char_device() {
            DeviceKind::Char
        } else if file_type.is_block_device() {
            DeviceKind::Block
        } else {
            continue;
        };
        let rdev = meta.rdev();
        found.push(HostDevice {
            path,
            kind,
            major: i64::from(major(rdev)),
            minor: i64::from(minor(rdev)),
            file_mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        });
    }
}

fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)) as u32
}

fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_null_is_found_with_its_numbers() {
        let devices = scan_devices(Path::new("/dev"));
        let null = devices
            .iter()
            .find(|d| d.path == Path::new("/dev/null"))
            .expect("/dev/null exists");
        assert_eq!(
            (null.kind, null.major, null.minor),
            (DeviceKind::Char, 1, 3)
        );
        assert!(!devices.iter().any(|d| d.path.starts_with("/dev/pts")));
    }
}
