use std::path::Path;

use berth_image::config::{ContainerConfig, ImageConfig};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::*;
use crate::HostConfig;

fn image() -> ImageConfig {
    ImageConfig {
        config: Some(ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            user: Some("daemon".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

const PASSWD: &str = "root:x:0:0::/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n";

fn run(f: impl FnOnce(&mut HostConfig)) -> Result<Spec, SpecError> {
    let image = image();
    let mut host = HostConfig {
        hostname: "h1".into(),
        ..Default::default()
    };
    f(&mut host);
    let mut inputs = SpecInputs::new(&image, &host, "/rootfs");
    inputs.passwd = Some(PASSWD);
    inputs.init_path = Some("/usr/bin/tini".into());
    generate(&inputs)
}

fn process(spec: &Spec) -> &Process {
    spec.process().as_ref().unwrap()
}

fn linux(spec: &Spec) -> &Linux {
    spec.linux().as_ref().unwrap()
}

fn mount_destinations(spec: &Spec) -> Vec<String> {
    spec.mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().display().to_string())
        .collect()
}

#[test]
fn image_user_applies_unless_overridden() {
    let spec = run(|_| {}).unwrap();
    assert_eq!(process(&spec).user().uid(), 1);
    let spec = run(|h| h.user = "0:0".into()).unwrap();
    assert_eq!(process(&spec).user().uid(), 0);
    let err = run(|h| h.user = "xyz".into()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to find user xyz: no matching entries in passwd file"
    );
}

#[test]
fn init_only_in_a_private_pid_namespace() {
    let spec = run(|h| h.init = true).unwrap();
    assert_eq!(
        process(&spec).args().as_ref().unwrap()[0],
        "/sbin/docker-init"
    );
    assert!(mount_destinations(&spec).contains(&"/sbin/docker-init".to_string()));

    let spec = run(|h| {
        h.init = true;
        h.pid_mode = "host".into();
    })
    .unwrap();
    assert_eq!(
        process(&spec).args().as_ref().unwrap(),
        &vec!["sh".to_string()]
    );
    assert!(!mount_destinations(&spec).contains(&"/sbin/docker-init".to_string()));

    let image = image();
    let host = HostConfig {
        init: true,
        ..Default::default()
    };
    let inputs = SpecInputs::new(&image, &host, "/rootfs");
    assert_eq!(
        generate(&inputs).unwrap_err().to_string(),
        "exec: \"docker-init\": executable file not found in $PATH"
    );
}

#[test]
fn host_uts_has_no_hostname() {
    assert_eq!(run(|_| {}).unwrap().hostname().as_deref(), Some("h1"));
    let spec = run(|h| h.uts_mode = "host".into()).unwrap();
    assert_eq!(spec.hostname(), &None);
    let types: Vec<_> = linux(&spec)
        .namespaces()
        .iter()
        .flatten()
        .map(|n| n.typ())
        .collect();
    assert!(!types.contains(&LinuxNamespaceType::Uts));
}

#[test]
fn ipc_none_has_no_dev_shm_and_shm_size_applies() {
    let spec = run(|h| h.ipc_mode = "none".into()).unwrap();
    assert!(!mount_destinations(&spec).contains(&"/dev/shm".to_string()));
    let spec = run(|h| h.shm_size = 1 << 20).unwrap();
    let shm = spec
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new("/dev/shm"))
        .unwrap();
    assert!(
        shm.options()
            .as_ref()
            .unwrap()
            .contains(&"size=1048576".to_string())
    );
    assert!(run(|h| h.shm_size = -1).is_err());
}

#[test]
fn system_paths_can_be_overridden() {
    let spec = run(|h| {
        h.masked_paths = Some(vec![]);
        h.readonly_paths = Some(vec!["/proc/sys".into()]);
    })
    .unwrap();
    assert_eq!(linux(&spec).masked_paths(), &None);
    assert_eq!(
        linux(&spec).readonly_paths(),
        &Some(vec!["/proc/sys".to_string()])
    );
    // Explicit lists apply even to privileged containers, as in Docker.
    let spec = run(|h| {
        h.privileged = true;
        h.masked_paths = Some(vec!["/proc/kcore".into()]);
    })
    .unwrap();
    assert_eq!(
        linux(&spec).masked_paths(),
        &Some(vec!["/proc/kcore".to_string()])
    );
    assert_eq!(linux(&spec).readonly_paths(), &None);
}

#[test]
fn seccomp_choices() {
    assert!(linux(&run(|_| {}).unwrap()).seccomp().is_some());
    assert!(
        linux(&run(|h| h.privileged = true).unwrap())
            .seccomp()
            .is_none()
    );
    let custom = run(|h| {
        h.security_opt = vec![
            r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#.into(),
        ];
    })
    .unwrap();
    let seccomp = linux(&custom).seccomp().as_ref().unwrap();
    assert_eq!(seccomp.syscalls().as_ref().unwrap().len(), 1);
    assert!(run(|h| h.security_opt = vec!["seccomp={oops".into()]).is_err());
}

#[test]
fn writable_cgroups_and_cgroups_path() {
    let spec = run(|h| h.security_opt = vec!["writable-cgroups=true".into()]).unwrap();
    let cgroup = spec
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new("/sys/fs/cgroup"))
        .unwrap();
    assert!(
        !cgroup
            .options()
            .as_ref()
            .unwrap()
            .contains(&"ro".to_string())
    );
    assert_eq!(linux(&spec).cgroups_path(), &None);
}

#[test]
fn errors_surface_from_every_part() {
    let err = |f: fn(&mut HostConfig)| run(f).unwrap_err().to_string();
    assert_eq!(
        err(|h| h.cap_add = vec!["CAP_FOO".into()]),
        r#"unknown capability: "CAP_FOO""#
    );
    assert_eq!(err(|h| h.memory = 1), "Minimum memory limit allowed is 6MB");
    assert_eq!(
        err(|h| {
            h.sysctls.insert("kernel.pid_max".into(), "1".into());
        }),
        "sysctl 'kernel.pid_max=1' is not allowed"
    );
    assert_eq!(
        err(|h| h.network_mode = "container:x".into()),
        "network mode \"container:x\" needs the path of the namespace to join"
    );
    assert_eq!(
        err(|h| h.security_opt = vec!["x".into()]),
        r#"invalid --security-opt 1: "x""#
    );
}
