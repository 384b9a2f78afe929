//! Namespaces from the `--pid`, `--ipc`, `--uts`, `--network` and `--cgroupns` modes
//! (moby `WithNamespaces`), and the namespaced sysctls those modes allow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::mounts::Shm;
use crate::{HostConfig, HostFacts, SpecError};

/// The namespaces of a container and what follows from them.
#[derive(Debug)]
pub struct Plan {
    /// In Docker's order: mount, network, uts, pid, ipc, cgroup.
    pub namespaces: Vec<LinuxNamespace>,
    /// A new (or joined, non-host) network namespace: the network sysctls apply.
    pub net_private: bool,
    /// Created by this container (not joined): Docker's default network sysctls apply.
    pub net_created: bool,
    pub pid_private: bool,
    pub uts_private: bool,
    pub ipc_private: bool,
    pub shm: ShmMode,
}

/// How `/dev/shm` follows the IPC mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShmMode {
    Private,
    Host,
    None,
}

impl ShmMode {
    pub fn with_size(self, size: i64) -> Shm {
        match self {
            ShmMode::Private => Shm::Private(size),
            ShmMode::Host => Shm::Host,
            ShmMode::None => Shm::None,
        }
    }
}

/// What a mode string asks for (`container:<id>` joins another container's).
enum Mode {
    Private,
    Host,
    Container,
}

fn namespace(typ: LinuxNamespaceType, path: Option<&Path>) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns.set_path(path.map(Path::to_path_buf));
    ns
}

fn parse_mode(
    kind: &'static str,
    mode: &str,
    private: &[&str],
    container_ok: bool,
) -> Result<Mode, SpecError> {
    if mode.is_empty() || private.contains(&mode) {
        return Ok(Mode::Private);
    }
    if mode == "host" {
        return Ok(Mode::Host);
    }
    match mode.strip_prefix("container:") {
        Some(id) if container_ok && !id.is_empty() => Ok(Mode::Container),
        _ => Err(SpecError::NamespaceMode {
            kind,
            mode: mode.to_string(),
        }),
    }
}

/// Works out the namespaces; `join` gives the paths of namespaces to join (required for
/// `container:<id>` modes, optional otherwise).
pub fn plan(
    host: &HostConfig,
    join: &[(LinuxNamespaceType, PathBuf)],
    facts: &HostFacts,
) -> Result<Plan, SpecError> {
    let path_of = |typ: LinuxNamespaceType| {
        join.iter()
            .find(|(t, _)| *t == typ)
            .map(|(_, p)| p.as_path())
    };
    let required = |typ, kind, mode: &str| {
        path_of(typ).ok_or_else(|| SpecError::NamespacePathMissing {
            kind,
            mode: mode.to_string(),
        })
    };
    let mut namespaces = vec![namespace(LinuxNamespaceType::Mount, None)];

    // Network: every mode but host and container:<id> creates one (bridge, none, names);
    // a path given by the network driver is joined instead.
    let (net_private, net_created) = match host.network_mode.as_str() {
        "host" => (false, false),
        mode => match mode.strip_prefix("container:") {
            Some(_) => {
                let path = required(LinuxNamespaceType::Network, "network", mode)?;
                namespaces.push(namespace(LinuxNamespaceType::Network, Some(path)));
                (true, false)
            }
            None => {
                namespaces.push(namespace(
                    LinuxNamespaceType::Network,
                    path_of(LinuxNamespaceType::Network),
                ));
                (true, true)
            }
        },
    };

    let uts_private = match parse_mode("UTS", &host.uts_mode, &[], false)? {
        Mode::Host => false,
        _ => {
            namespaces.push(namespace(
                LinuxNamespaceType::Uts,
                path_of(LinuxNamespaceType::Uts),
            ));
            true
        }
    };

    let pid_private = match parse_mode("PID", &host.pid_mode, &[], true)? {
        Mode::Host => false,
        Mode::Container => {
            let path = required(LinuxNamespaceType::Pid, "PID", &host.pid_mode)?;
            namespaces.push(namespace(LinuxNamespaceType::Pid, Some(path)));
            false
        }
        Mode::Private => {
            namespaces.push(namespace(
                LinuxNamespaceType::Pid,
                path_of(LinuxNamespaceType::Pid),
            ));
            true
        }
    };

    let (ipc_private, shm) = match parse_mode(
        "IPC",
        &host.ipc_mode,
        &["private", "shareable", "none"],
        true,
    )? {
        Mode::Host => (false, ShmMode::Host),
        Mode::Container => {
            let path = required(LinuxNamespaceType::Ipc, "IPC", &host.ipc_mode)?;
            namespaces.push(namespace(LinuxNamespaceType::Ipc, Some(path)));
            (true, ShmMode::Private)
        }
        Mode::Private => {
            namespaces.push(namespace(
                LinuxNamespaceType::Ipc,
                path_of(LinuxNamespaceType::Ipc),
            ));
            let shm = if host.ipc_mode == "none" {
                ShmMode::None
            } else {
                ShmMode::Private
            };
            (true, shm)
        }
    };

    // Docker's default: private on cgroup v2; on v1 the host's (always for privileged).
    let cgroupns_private = match host.cgroupns_mode.as_str() {
        "" => facts.cgroup_v2,
        "private" => true,
        "host" => false,
        other => {
            return Err(SpecError::NamespaceMode {
                kind: "cgroup namespace",
                mode: other.to_string(),
            });
        }
    };
    if cgroupns_private {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup, None));
    }

    Ok(Plan {
        namespaces,
        net_private,
        net_created,
        pid_private,
        uts_private,
        ipc_private,
        shm,
    })
}

/// The sysctls Docker namespaces with IPC (besides `fs.mqueue.*`).
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The container's sysctls: `kernel.domainname` for `--domainname` (Docker sets the NIS
/// domain this way), Docker's two network defaults for a new network namespace, then
/// `--sysctl` (which wins). Only namespaced sysctls are accepted, and only when the
/// container has the namespace.
pub fn sysctls(host: &HostConfig, plan: &Plan) -> Result<BTreeMap<String, String>, SpecError> {
    let mut out = BTreeMap::new();
    if !host.domainname.is_empty() {
        out.insert("kernel.domainname".to_string(), host.domainname.clone());
    }
    if plan.net_created {
        // Unprivileged ICMP sockets and low ports without CAP_NET_RAW/NET_BIND_SERVICE.
        out.insert(
            "net.ipv4.ping_group_range".to_string(),
            "0 2147483647".to_string(),
        );
        out.insert(
            "net.ipv4.ip_unprivileged_port_start".to_string(),
            "0".to_string(),
        );
    }
    for (name, value) in &host.sysctls {
        let ipc = IPC_SYSCTLS.contains(&name.as_str()) || name.starts_with("fs.mqueue.");
        let net = name.starts_with("net.");
        if !ipc && !net {
            return Err(SpecError::SysctlNotAllowed(format!("{name}={value}")));
        }
        if ipc && !plan.ipc_private {
            return Err(SpecError::SysctlHostNamespace {
                name: name.clone(),
                namespace: "ipc",
            });
        }
        if net && !plan.net_private {
            return Err(SpecError::SysctlHostNamespace {
                name: name.clone(),
                namespace: "network",
            });
        }
        out.insert(name.clone(), value.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(p: &Plan) -> Vec<LinuxNamespaceType> {
        p.namespaces.iter().map(|n| n.typ()).collect()
    }

    fn host(f: impl FnOnce(&mut HostConfig)) -> HostConfig {
        let mut h = HostConfig::default();
        f(&mut h);
        h
    }

    use LinuxNamespaceType::{Cgroup, Ipc, Mount, Network, Pid, Uts};

    #[test]
    fn defaults_create_everything_in_dockers_order() {
        let p = plan(&HostConfig::default(), &[], &HostFacts::default()).unwrap();
        assert_eq!(types(&p), vec![Mount, Network, Uts, Pid, Ipc, Cgroup]);
        assert!(p.net_created && p.pid_private && p.uts_private && p.ipc_private);
        let v1 = HostFacts {
            cgroup_v2: false,
            ..HostFacts::default()
        };
        let p = plan(&HostConfig::default(), &[], &v1).unwrap();
        assert_eq!(types(&p), vec![Mount, Network, Uts, Pid, Ipc]);
    }

    #[test]
    fn host_modes_drop_namespaces() {
        let h = host(|h| {
            h.network_mode = "host".into();
            h.pid_mode = "host".into();
            h.ipc_mode = "host".into();
            h.uts_mode = "host".into();
            h.cgroupns_mode = "host".into();
        });
        let p = plan(&h, &[], &HostFacts::default()).unwrap();
        assert_eq!(types(&p), vec![Mount]);
        assert_eq!(p.shm, ShmMode::Host);
        assert!(!p.net_private && !p.pid_private && !p.uts_private && !p.ipc_private);
    }

    #[test]
    fn joined_namespaces_carry_paths() {
        let h = host(|h| {
            h.network_mode = "container:abc".into();
            h.pid_mode = "container:abc".into();
        });
        assert!(matches!(
            plan(&h, &[], &HostFacts::default()),
            Err(SpecError::NamespacePathMissing { .. })
        ));
        let join = vec![
            (Network, PathBuf::from("/proc/42/ns/net")),
            (Pid, PathBuf::from("/proc/42/ns/pid")),
        ];
        let p = plan(&h, &join, &HostFacts::default()).unwrap();
        assert_eq!(
            p.namespaces[1].path().as_deref(),
            Some(Path::new("/proc/42/ns/net"))
        );
        assert!(p.net_private && !p.net_created && !p.pid_private);
        // A bridge network namespace prepared by the network driver is joined too.
        let join = vec![(Network, PathBuf::from("/run/berth/netns/c1"))];
        let p = plan(&HostConfig::default(), &join, &HostFacts::default()).unwrap();
        assert!(p.net_created);
        assert!(p.namespaces[1].path().is_some());
    }

    #[test]
    fn invalid_modes_are_refused() {
        let err = plan(
            &host(|h| h.pid_mode = "bogus".into()),
            &[],
            &HostFacts::default(),
        );
        assert_eq!(err.unwrap_err().to_string(), "invalid PID mode: bogus");
        let err = plan(
            &host(|h| h.uts_mode = "container:x".into()),
            &[],
            &HostFacts::default(),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "invalid UTS mode: container:x"
        );
        let err = plan(
            &host(|h| h.ipc_mode = "container:".into()),
            &[],
            &HostFacts::default(),
        );
        assert_eq!(err.unwrap_err().to_string(), "invalid IPC mode: container:");
        let err = plan(
            &host(|h| h.cgroupns_mode = "x".into()),
            &[],
            &HostFacts::default(),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "invalid cgroup namespace mode: x"
        );
    }

    #[test]
    fn sysctls_only_namespaced_ones() {
        let facts = HostFacts::default();
        let h = host(|h| {
            h.domainname = "example.org".into();
            h.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
            h.sysctls.insert("kernel.shmmax".into(), "1000".into());
            h.sysctls.insert("fs.mqueue.msg_max".into(), "20".into());
            h.sysctls
                .insert("net.ipv4.ip_unprivileged_port_start".into(), "1024".into());
        });
        let s = sysctls(&h, &plan(&h, &[], &facts).unwrap()).unwrap();
        assert_eq!(s["kernel.domainname"], "example.org");
        assert_eq!(s["net.ipv4.ping_group_range"], "0 2147483647");
        assert_eq!(s["net.ipv4.ip_unprivileged_port_start"], "1024");
        assert_eq!(s.len(), 6);

        let h = host(|h| {
            h.sysctls.insert("kernel.pid_max".into(), "100".into());
        });
        let err = sysctls(&h, &plan(&h, &[], &facts).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sysctl 'kernel.pid_max=100' is not allowed"
        );
        let h = host(|h| {
            h.sysctls.insert("vm.swappiness".into(), "1".into());
        });
        assert!(sysctls(&h, &plan(&h, &[], &facts).unwrap()).is_err());
    }

    #[test]
    fn sysctls_need_their_namespace() {
        let facts = HostFacts::default();
        let h = host(|h| {
            h.network_mode = "host".into();
            h.sysctls.insert("net.core.somaxconn".into(), "1024".into());
        });
        let p = plan(&h, &[], &facts).unwrap();
        assert_eq!(
            sysctls(&h, &p).unwrap_err().to_string(),
            r#"sysctl "net.core.somaxconn" is not allowed in the hosts network namespace"#
        );
        let h = host(|h| {
            h.network_mode = "host".into();
        });
        assert!(
            sysctls(&h, &plan(&h, &[], &facts).unwrap())
                .unwrap()
                .is_empty()
        );
        let h = host(|h| {
            h.ipc_mode = "host".into();
            h.sysctls.insert("kernel.sem".into(), "1 2 3 4".into());
        });
        let p = plan(&h, &[], &facts).unwrap();
        assert_eq!(
            sysctls(&h, &p).unwrap_err().to_string(),
            r#"sysctl "kernel.sem" is not allowed in the hosts ipc namespace"#
        );
    }
}
