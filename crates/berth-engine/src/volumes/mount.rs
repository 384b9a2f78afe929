//! The local driver's `type`/`device`/`o` options: a mount made on the volume's `_data`
//! directory when the volume is first used, as `mount -t TYPE -o O DEVICE _data` would.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::Path;

use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

/// The options of a volume that needs a mount.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOpts {
    pub fs_type: String,
    pub device: String,
    pub options: String,
}

impl MountOpts {
    /// `Some` when the driver options ask for a mount (`type` or `device` given).
    pub fn from_driver_opts(opts: Option<&BTreeMap<String, String>>) -> Option<MountOpts> {
        let opts = opts?;
        if !opts.contains_key("type") && !opts.contains_key("device") {
            return None;
        }
        let get = |k: &str| opts.get(k).cloned().unwrap_or_default();
        Some(MountOpts {
            fs_type: get("type"),
            device: get("device"),
            options: get("o"),
        })
    }
}

/// `o=` split into mount(2) flags and the filesystem's data string, as `mount(8)` does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParsedOptions {
    pub flags: MountFlags,
    pub propagation: MountPropagationFlags,
    pub bind: bool,
    pub recursive: bool,
    pub data: String,
}

pub(crate) fn parse_options(o: &str) -> ParsedOptions {
    let mut flags = MountFlags::empty();
    let mut propagation = MountPropagationFlags::empty();
    let (mut bind, mut recursive) = (false, false);
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        let (set, clear) = match opt {
            "ro" => (MountFlags::RDONLY, MountFlags::empty()),
            "rw" => (MountFlags::empty(), MountFlags::RDONLY),
            "nosuid" => (MountFlags::NOSUID, MountFlags::empty()),
            "suid" => (MountFlags::empty(), MountFlags::NOSUID),
            "nodev" => (MountFlags::NODEV, MountFlags::empty()),
            "dev" => (MountFlags::empty(), MountFlags::NODEV),
            "noexec" => (MountFlags::NOEXEC, MountFlags::empty()),
            "exec" => (MountFlags::empty(), MountFlags::NOEXEC),
            "sync" => (MountFlags::SYNCHRONOUS, MountFlags::empty()),
            "async" => (MountFlags::empty(), MountFlags::SYNCHRONOUS),
            "dirsync" => (MountFlags::DIRSYNC, MountFlags::empty()),
            "mand" => (
                MountFlags::PERMIT_MANDATORY_FILE_LOCKING,
                MountFlags::empty(),
            ),
            "nomand" => (
                MountFlags::empty(),
                MountFlags::PERMIT_MANDATORY_FILE_LOCKING,
            ),
            "noatime" => (MountFlags::NOATIME, MountFlags::empty()),
            "atime" => (MountFlags::empty(), MountFlags::NOATIME),
            "nodiratime" => (MountFlags::NODIRATIME, MountFlags::empty()),
            "diratime" => (MountFlags::empty(), MountFlags::NODIRATIME),
            "relatime" => (MountFlags::RELATIME, MountFlags::empty()),
            "norelatime" => (MountFlags::empty(), MountFlags::RELATIME),
            "strictatime" => (MountFlags::STRICTATIME, MountFlags::empty()),
            "nostrictatime" => (MountFlags::empty(), MountFlags::STRICTATIME),
            "defaults" => (MountFlags::empty(), MountFlags::empty()),
            "bind" => {
                bind = true;
                continue;
            }
            "rbind" => {
                bind = true;
                recursive = true;
                continue;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                propagation |= match opt.trim_start_matches('r') {
                    "private" => MountPropagationFlags::PRIVATE,
                    "shared" => MountPropagationFlags::SHARED,
                    "slave" => MountPropagationFlags::DOWNSTREAM,
                    _ => MountPropagationFlags::UNBINDABLE,
                };
                if opt.starts_with('r') {
                    propagation |= MountPropagationFlags::REC;
                }
                continue;
            }
            other => {
                data.push(other);
                continue;
            }
        };
        flags |= set;
        flags &= !clear;
    }
    ParsedOptions {
        flags,
        propagation,
        bind,
        recursive,
        data: data.join(","),
    }
}

fn describe(opts: &MountOpts, target: &Path, p: &ParsedOptions, e: rustix::io::Errno) -> String {
    let mut flags = p.flags.bits();
    if p.bind {
        flags |= MountFlags::BIND.bits();
    }
    let mut s = format!(
        "error while mounting volume '{}': failed to mount local volume: mount {}:{}",
        target.display(),
        opts.device,
        target.display()
    );
    if flags != 0 {
        s.push_str(&format!(", flags: {flags:#x}"));
    }
    if !p.data.is_empty() {
        s.push_str(&format!(", data: {}", p.data));
    }
    s.push_str(&format!(": {}", std::io::Error::from(e)));
    s
}

/// Mounts the volume's device on `target` (its `_data` directory).
pub fn mount(opts: &MountOpts, target: &Path) -> Result<(), String> {
    let p = parse_options(&opts.options);
    let fail = |e| describe(opts, target, &p, e);
    if opts.device.is_empty() {
        return Err("missing device in volume options".to_string());
    }
    if p.bind {
        if p.recursive {
            rustix::mount::mount_bind_recursive(opts.device.as_str(), target).map_err(fail)?;
        } else {
            rustix::mount::mount_bind(opts.device.as_str(), target).map_err(fail)?;
        }
        // A bind mount ignores other flags on the first call; they take a remount.
        if !p.flags.is_empty()
            && let Err(e) = rustix::mount::mount_remount(target, p.flags | MountFlags::BIND, "")
        {
            let _ = unmount(target);
            return Err(fail(e));
        }
    } else {
        let data = CString::new(p.data.clone()).map_err(|_| "invalid mount options".to_string())?;
        rustix::mount::mount(
            opts.device.as_str(),
            target,
            opts.fs_type.as_str(),
            p.flags,
            Some(data.as_c_str()),
        )
        .map_err(fail)?;
    }
    if !p.propagation.is_empty()
        && let Err(e) = rustix::mount::mount_change(target, p.propagation)
    {
        let _ = unmount(target);
        return Err(fail(e));
    }
    Ok(())
}

/// Unmounts `target` (lazily, as dockerd does); nothing mounted there is not an error.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_from_data() {
        let p = parse_options("size=10m,uid=1000,ro,noexec");
        assert_eq!(p.flags, MountFlags::RDONLY | MountFlags::NOEXEC);
        assert_eq!(p.data, "size=10m,uid=1000");
        assert!(!p.bind);
        let p = parse_options("rbind,ro,rw");
        assert!(p.bind && p.recursive);
        assert!(p.flags.is_empty());
        let p = parse_options("bind,rshared");
        assert!(p.bind && !p.recursive);
        assert_eq!(
            p.propagation,
            MountPropagationFlags::SHARED | MountPropagationFlags::REC
        );
    }

    #[test]
    fn only_type_or_device_means_a_mount() {
        let mut o = BTreeMap::new();
        assert!(MountOpts::from_driver_opts(Some(&o)).is_none());
        assert!(MountOpts::from_driver_opts(None).is_none());
        o.insert("type".to_string(), "tmpfs".to_string());
        o.insert("device".to_string(), "tmpfs".to_string());
        let m = MountOpts::from_driver_opts(Some(&o)).unwrap();
        assert_eq!(m.fs_type, "tmpfs");
        assert_eq!(m.options, "");
    }
}
