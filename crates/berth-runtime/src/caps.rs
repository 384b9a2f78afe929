//! Capabilities: Docker's default set and the `--cap-add`/`--cap-drop`/`--privileged`
//! rules (moby `oci/caps`).

use oci_spec::runtime::{Capabilities, Capability};

use crate::SpecError;

/// Every capability by number (`CAP_CHOWN` is 0); a kernel knows those up to its last.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capabilities, in Docker's order.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const ALL: &str = "ALL";

/// The capabilities the host kernel knows (all of them up to `last_cap`).
fn known(last_cap: u32) -> &'static [&'static str] {
    let n = usize::try_from(last_cap).map_or(ALL_CAPABILITIES.len(), |l| l + 1);
    &ALL_CAPABILITIES[..n.min(ALL_CAPABILITIES.len())]
}

/// Upper-cases and prefixes `CAP_`, keeps `ALL`, and refuses names the kernel does not
/// know, with Docker's messages.
fn normalize(caps: &[String], last_cap: u32) -> Result<Vec<String>, SpecError> {
    let mut out = Vec::with_capacity(caps.len());
    for cap in caps {
        let mut c = cap.to_uppercase();
        if c == ALL {
            out.push(c);
            continue;
        }
        if !c.starts_with("CAP_") {
            c = format!("CAP_{c}");
        }
        if !ALL_CAPABILITIES.contains(&c.as_str()) {
            return Err(SpecError::UnknownCapability(c));
        }
        if !known(last_cap).contains(&c.as_str()) {
            return Err(SpecError::UnsupportedCapability(c));
        }
        out.push(c);
    }
    Ok(out)
}

/// The capability list of a container: all known ones when privileged, otherwise the
/// defaults with `drop` removed and `add` added (`ALL` in either means all known ones).
/// The order is Docker's: defaults (or all, by number) first, then the additions.
pub fn effective(
    privileged: bool,
    add: &[String],
    drop: &[String],
    last_cap: u32,
) -> Result<Vec<String>, SpecError> {
    let all = || known(last_cap).iter().map(|c| c.to_string());
    if privileged {
        return Ok(all().collect());
    }
    let drop = normalize(drop, last_cap)?;
    let add = normalize(add, last_cap)?;
    let mut caps: Vec<String> = if add.iter().any(|c| c == ALL) {
        all().filter(|c| !drop.contains(c)).collect()
    } else if drop.iter().any(|c| c == ALL) {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    // Docker appends the additions even when they are already there; a set cannot hold
    // a capability twice, so duplicates are dropped here instead.
    for c in add {
        if c != ALL && !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

/// Converts validated names (`CAP_…`) to the OCI type.
pub fn to_set(caps: &[String]) -> Result<Capabilities, SpecError> {
    caps.iter()
        .map(|c| {
            serde_json::from_value::<Capability>(serde_json::Value::String(c.clone()))
                .map_err(|_| SpecError::UnknownCapability(c.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_are_dockers_fourteen() {
        let caps = effective(false, &[], &[], 40).unwrap();
        assert_eq!(caps, strings(&DEFAULT_CAPABILITIES));
        assert_eq!(to_set(&caps).unwrap().len(), 14);
    }

    #[test]
    fn add_and_drop_accept_any_case_and_prefix() {
        let caps = effective(
            false,
            &strings(&["net_admin", "CAP_SYS_PTRACE", "Sys_Time"]),
            &strings(&["cap_chown", "MKNOD"]),
            40,
        )
        .unwrap();
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(!caps.contains(&"CAP_MKNOD".to_string()));
        for c in [
            "CAP_NET_ADMIN",
            "CAP_SYS_PTRACE",
            "CAP_SYS_TIME",
            "CAP_KILL",
        ] {
            assert!(caps.contains(&c.to_string()), "{c} missing from {caps:?}");
        }
        assert_eq!(caps.len(), 14 - 2 + 3);
    }

    #[test]
    fn drop_all_keeps_only_the_additions() {
        let caps = effective(false, &strings(&["NET_ADMIN"]), &strings(&["all"]), 40).unwrap();
        assert_eq!(caps, strings(&["CAP_NET_ADMIN"]));
        let none = effective(false, &[], &strings(&["ALL"]), 40).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn add_all_gives_every_known_capability_minus_drops() {
        let caps = effective(false, &strings(&["ALL"]), &strings(&["SYS_ADMIN"]), 40).unwrap();
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
        // An older kernel (last cap 37 = CAP_AUDIT_READ) knows fewer.
        assert_eq!(effective(true, &[], &[], 37).unwrap().len(), 38);
    }

    #[test]
    fn privileged_gets_all_and_ignores_add_drop() {
        let caps = effective(true, &[], &strings(&["ALL"]), 40).unwrap();
        assert_eq!(caps, strings(&ALL_CAPABILITIES));
        assert_eq!(to_set(&caps).unwrap().len(), 41);
    }

    #[test]
    fn adding_a_default_does_not_duplicate_it() {
        let caps = effective(false, &strings(&["CHOWN"]), &[], 40).unwrap();
        assert_eq!(caps.len(), 14);
    }

    #[test]
    fn unknown_capabilities_are_refused_with_dockers_message() {
        let err = effective(false, &strings(&["CAP_FOO"]), &[], 40).unwrap_err();
        assert_eq!(err.to_string(), r#"unknown capability: "CAP_FOO""#);
        let err = effective(false, &[], &strings(&["foo"]), 40).unwrap_err();
        assert_eq!(err.to_string(), r#"unknown capability: "CAP_FOO""#);
        let err = effective(false, &strings(&["BPF"]), &[], 37).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"capability not supported by your kernel or not available in the current environment: "CAP_BPF""#
        );
    }
}
