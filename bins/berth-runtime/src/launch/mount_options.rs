//! A spec mount's `options`, as runc reads them: flags to set or clear, a bind (and
//! whether it is recursive), propagation changes, and the rest as the filesystem's data.
//! Options the launcher does not implement (recursive attributes, id-mapped mounts,
//! `tmpcopyup`) are reported, so the spec goes through libcontainer's builder instead.

use rustix::mount::{MountFlags, MountPropagationFlags};

/// A mount's options, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    /// Flags for the mount (and for the remount of a bind).
    pub flags: MountFlags,
    pub bind: bool,
    /// `rbind`: the source's submounts come along.
    pub recursive: bool,
    /// Applied after the mount, in order.
    pub propagation: Vec<MountPropagationFlags>,
    /// Filesystem options (`mode=755`, `size=65536k`), comma-separated.
    pub data: String,
}

/// What a flag option does.
enum Effect {
    Set(MountFlags),
    Clear(MountFlags),
    Bind {
        recursive: bool,
    },
    Propagation(MountPropagationFlags),
    /// Accepted and meaningless here (`defaults`, `remount` of a new mount).
    Nothing,
}

fn effect(option: &str) -> Option<Effect> {
    use Effect::*;
    use MountPropagationFlags as P;
    let mandlock = MountFlags::PERMIT_MANDATORY_FILE_LOCKING;
    Some(match option {
        "defaults" | "remount" => Nothing,
        "ro" => Set(MountFlags::RDONLY),
        "rw" => Clear(MountFlags::RDONLY),
        "nosuid" => Set(MountFlags::NOSUID),
        "suid" => Clear(MountFlags::NOSUID),
        "nodev" => Set(MountFlags::NODEV),
        "dev" => Clear(MountFlags::NODEV),
        "noexec" => Set(MountFlags::NOEXEC),
        "exec" => Clear(MountFlags::NOEXEC),
        "sync" => Set(MountFlags::SYNCHRONOUS),
        "async" => Clear(MountFlags::SYNCHRONOUS),
        "dirsync" => Set(MountFlags::DIRSYNC),
        "mand" => Set(mandlock),
        "nomand" => Clear(mandlock),
        "noatime" => Set(MountFlags::NOATIME),
        "atime" => Clear(MountFlags::NOATIME),
        "nodiratime" => Set(MountFlags::NODIRATIME),
        "diratime" => Clear(MountFlags::NODIRATIME),
        "relatime" => Set(MountFlags::RELATIME),
        "norelatime" => Clear(MountFlags::RELATIME),
        "strictatime" => Set(MountFlags::STRICTATIME),
        "nostrictatime" => Clear(MountFlags::STRICTATIME),
        "lazytime" => Set(MountFlags::LAZYTIME),
        "nolazytime" => Clear(MountFlags::LAZYTIME),
        "nosymfollow" => Set(MountFlags::NOSYMFOLLOW),
        "symfollow" => Clear(MountFlags::NOSYMFOLLOW),
        "silent" => Set(MountFlags::SILENT),
        "loud" => Clear(MountFlags::SILENT),
        "bind" => Bind { recursive: false },
        "rbind" => Bind { recursive: true },
        "private" => Propagation(P::PRIVATE),
        "rprivate" => Propagation(P::PRIVATE | P::REC),
        "shared" => Propagation(P::SHARED),
        "rshared" => Propagation(P::SHARED | P::REC),
        "slave" => Propagation(P::DOWNSTREAM),
        "rslave" => Propagation(P::DOWNSTREAM | P::REC),
        "unbindable" => Propagation(P::UNBINDABLE),
        "runbindable" => Propagation(P::UNBINDABLE | P::REC),
        _ => return None,
    })
}

/// Options that change a mount in ways only libcontainer's builder implements.
fn needs_libcontainer(option: &str) -> bool {
    const RECURSIVE: [&str; 18] = [
        "rro",
        "rrw",
        "rnosuid",
        "rsuid",
        "rnodev",
        "rdev",
        "rnoexec",
        "rexec",
        "rnodiratime",
        "rdiratime",
        "rrelatime",
        "rnorelatime",
        "rnoatime",
        "ratime",
        "rstrictatime",
        "rnostrictatime",
        "rnosymfollow",
        "rsymfollow",
    ];
    RECURSIVE.contains(&option) || matches!(option, "idmap" | "ridmap" | "tmpcopyup")
}

impl MountOptions {
    /// Parses `options`; `Err` names the first option only libcontainer implements.
    pub fn parse(options: &[String]) -> Result<MountOptions, String> {
        let mut parsed = MountOptions {
            flags: MountFlags::empty(),
            bind: false,
            recursive: false,
            propagation: Vec::new(),
            data: String::new(),
        };
        for option in options {
            if needs_libcontainer(option) {
                return Err(option.clone());
            }
            match effect(option) {
                Some(Effect::Set(flag)) => parsed.flags |= flag,
                Some(Effect::Clear(flag)) => parsed.flags &= !flag,
                Some(Effect::Bind { recursive }) => {
                    parsed.bind = true;
                    parsed.recursive |= recursive;
                }
                Some(Effect::Propagation(flag)) => parsed.propagation.push(flag),
                Some(Effect::Nothing) => {}
                None => {
                    if !parsed.data.is_empty() {
                        parsed.data.push(',');
                    }
                    parsed.data.push_str(option);
                }
            }
        }
        Ok(parsed)
    }

    /// Whether a bind needs a remount to apply flags (a bind takes none of its own).
    pub fn bind_needs_remount(&self) -> bool {
        !self.flags.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[&str]) -> Result<MountOptions, String> {
        let options: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        MountOptions::parse(&options)
    }

    #[test]
    fn docker_default_mounts_parse_like_runc() {
        let dev = parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]).unwrap();
        assert_eq!(dev.flags, MountFlags::NOSUID | MountFlags::STRICTATIME);
        assert_eq!(dev.data, "mode=755,size=65536k");
        assert!(!dev.bind && dev.propagation.is_empty());

        let cgroup = parse(&["ro", "nosuid", "noexec", "nodev"]).unwrap();
        assert_eq!(
            cgroup.flags,
            MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV
        );
        assert_eq!(cgroup.data, "");

        let pts = parse(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ])
        .unwrap();
        assert_eq!(pts.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    }

    #[test]
    fn binds_and_propagation() {
        let bind = parse(&["rbind", "rprivate"]).unwrap();
        assert!(bind.bind && bind.recursive);
        assert_eq!(
            bind.propagation,
            [MountPropagationFlags::PRIVATE | MountPropagationFlags::REC]
        );
        assert!(!bind.bind_needs_remount());

        let ro = parse(&["bind", "ro", "rslave"]).unwrap();
        assert!(ro.bind && !ro.recursive && ro.bind_needs_remount());
        assert_eq!(ro.flags, MountFlags::RDONLY);
        assert_eq!(
            ro.propagation,
            [MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC]
        );
    }

    #[test]
    fn later_options_win() {
        assert_eq!(parse(&["ro", "rw"]).unwrap().flags, MountFlags::empty());
        assert_eq!(
            parse(&["rw", "ro", "defaults"]).unwrap().flags,
            MountFlags::RDONLY
        );
        assert_eq!(
            parse(&["nodev", "dev", "noexec"]).unwrap().flags,
            MountFlags::NOEXEC
        );
    }

    #[test]
    fn options_only_libcontainer_implements_are_named() {
        assert_eq!(parse(&["rbind", "rro"]).unwrap_err(), "rro");
        assert_eq!(parse(&["idmap"]).unwrap_err(), "idmap");
        assert_eq!(parse(&["tmpcopyup"]).unwrap_err(), "tmpcopyup");
    }
}
