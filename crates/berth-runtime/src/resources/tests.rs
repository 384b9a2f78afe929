use super::*;
use crate::DeviceMapping;

fn host(f: impl FnOnce(&mut HostConfig)) -> HostConfig {
    let mut h = HostConfig::default();
    f(&mut h);
    h
}

fn check(f: impl FnOnce(&mut HostConfig)) -> Result<(), String> {
    validate(&host(f), &HostFacts::default()).map_err(|e| e.to_string())
}

const MB: i64 = 1024 * 1024;

#[test]
fn memory_limits_and_default_swap() {
    assert!(memory(&HostConfig::default()).is_none());
    let m = memory(&host(|h| h.memory = 64 * MB)).unwrap();
    assert_eq!(m.limit(), Some(64 * MB));
    assert_eq!(m.swap(), Some(128 * MB), "swap defaults to twice the limit");
    let m = memory(&host(|h| {
        h.memory = 64 * MB;
        h.memory_swap = -1;
        h.memory_reservation = 32 * MB;
    }))
    .unwrap();
    assert_eq!(
        (m.limit(), m.swap(), m.reservation()),
        (Some(64 * MB), None, Some(32 * MB))
    );
}

#[test]
fn cpu_from_nano_cpus_shares_and_cpuset() {
    assert!(cpu(&HostConfig::default()).is_none());
    let c = cpu(&host(|h| h.nano_cpus = 1_500_000_000)).unwrap();
    assert_eq!((c.period(), c.quota()), (Some(100_000), Some(150_000)));
    let c = cpu(&host(|h| {
        h.cpu_shares = 512;
        h.cpuset_cpus = "0-1".into();
        h.cpu_period = 50_000;
        h.cpu_quota = 25_000;
    }))
    .unwrap();
    assert_eq!(c.shares(), Some(512));
    assert_eq!(c.cpus().as_deref(), Some("0-1"));
    assert_eq!((c.period(), c.quota()), (Some(50_000), Some(25_000)));
}

#[test]
fn pids_and_blkio() {
    let r = resources(&host(|h| h.pids_limit = Some(100)), vec![]);
    assert_eq!(r.pids().as_ref().unwrap().limit(), 100);
    let r = resources(&host(|h| h.pids_limit = Some(0)), vec![]);
    assert_eq!(r.pids().as_ref().unwrap().limit(), -1);
    let r = resources(&HostConfig::default(), vec![]);
    assert!(r.pids().is_none() && r.block_io().is_none());
    let r = resources(&host(|h| h.blkio_weight = 300), vec![]);
    assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
}

#[test]
fn resource_validation_uses_dockers_messages() {
    assert_eq!(check(|_| {}), Ok(()));
    assert_eq!(
        check(|h| h.memory = MB),
        Err("Minimum memory limit allowed is 6MB".into())
    );
    assert_eq!(
        check(|h| {
            h.memory = 64 * MB;
            h.memory_swap = 32 * MB;
        }),
        Err("Minimum memoryswap limit should be larger than memory limit, see usage".into())
    );
    assert_eq!(
        check(|h| h.memory_swap = 64 * MB),
        Err("You should always set the Memory limit when using Memoryswap limit, see usage".into())
    );
    assert_eq!(
        check(|h| {
            h.memory = 16 * MB;
            h.memory_reservation = 32 * MB;
        }),
        Err("Minimum memory limit can not be less than memory reservation limit, see usage".into())
    );
    assert_eq!(
        check(|h| {
            h.nano_cpus = 1_000_000_000;
            h.cpu_quota = 5000;
        }),
        Err("Conflicting options: Nano CPUs and CPU Quota cannot both be set".into())
    );
    assert_eq!(
        check(|h| h.memory_swappiness = Some(101)),
        Err("Invalid value: 101, valid memory swappiness range is 0-100".into())
    );
    assert_eq!(
        check(|h| h.blkio_weight = 5),
        Err("Range of blkio weight is from 10 to 1000".into())
    );
    assert_eq!(
        check(|h| h.oom_score_adj = 1001),
        Err("Invalid value 1001, range for oom score adj is [-1000, 1000]".into())
    );
    assert_eq!(
        check(|h| h.cpu_shares = -1),
        Err("invalid CPU shares (-1): value must be a positive integer".into())
    );
    let two = HostFacts {
        num_cpus: Some(2),
        ..HostFacts::default()
    };
    let err = validate(&host(|h| h.nano_cpus = 3_000_000_000), &two).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    );
}

fn dev(path: &str, kind: DeviceKind, major: i64, minor: i64) -> HostDevice {
    HostDevice {
        path: PathBuf::from(path),
        kind,
        major,
        minor,
        file_mode: 0o660,
        uid: 0,
        gid: 6,
    }
}

fn host_devices() -> Vec<HostDevice> {
    vec![
        dev("/dev/null", DeviceKind::Char, 1, 3),
        dev("/dev/fuse", DeviceKind::Char, 10, 229),
        dev("/dev/sda", DeviceKind::Block, 8, 0),
        dev("/dev/snd/controlC0", DeviceKind::Char, 116, 0),
        dev("/dev/snd/timer", DeviceKind::Char, 116, 33),
    ]
}

fn mapping(on_host: &str, in_container: &str, perms: &str) -> DeviceMapping {
    DeviceMapping {
        path_on_host: on_host.into(),
        path_in_container: in_container.into(),
        cgroup_permissions: perms.into(),
    }
}

fn paths(nodes: &[LinuxDevice]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| n.path().display().to_string())
        .collect()
}

#[test]
fn default_devices_and_rules() {
    let (nodes, rules) = devices(&HostConfig::default(), &host_devices()).unwrap();
    assert_eq!(
        paths(&nodes),
        [
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty"
        ]
    );
    let text: Vec<String> = rules
        .iter()
        .map(|r| format!("{} {r}", if r.allow() { "allow" } else { "deny" }))
        .collect();
    assert_eq!(
        text,
        [
            "deny a *:* rwm",
            "allow c 1:5 rwm",
            "allow c 1:3 rwm",
            "allow c 1:9 rwm",
            "allow c 1:8 rwm",
            "allow c 5:0 rwm",
            "allow c 5:1 rwm",
            "deny c 10:229 rwm",
            "allow c *:* m",
            "allow b *:* m",
            "allow c 1:7 rwm",
            "allow c 5:2 rwm",
            "allow c 136:* rwm",
            "allow c 10:200 rwm",
        ]
    );
}

#[test]
fn device_mappings_add_nodes_and_rules() {
    let h = host(|h| {
        h.devices = vec![
            mapping("/dev/fuse", "", ""),
            mapping("/dev/sda", "/dev/xvda", "r"),
            mapping("/dev/snd", "/dev/sound", "rw"),
        ];
        h.device_cgroup_rules = vec!["c 42:* rmw".into()];
    });
    let (nodes, rules) = devices(&h, &host_devices()).unwrap();
    assert_eq!(
        paths(&nodes)[6..],
        [
            "/dev/fuse",
            "/dev/xvda",
            "/dev/sound/controlC0",
            "/dev/sound/timer"
        ]
    );
    let fuse = &nodes[6];
    assert_eq!(
        (fuse.major(), fuse.minor(), fuse.file_mode(), fuse.gid()),
        (10, 229, Some(0o660), Some(6))
    );
    let added: Vec<String> = rules[8..13].iter().map(|r| r.to_string()).collect();
    assert_eq!(
        added,
        [
            "c 10:229 rwm",
            "b 8:0 r",
            "c 116:0 rw",
            "c 116:33 rw",
            "c 42:* rmw"
        ]
    );
}

#[test]
fn privileged_gets_every_host_device_and_all_access() {
    let h = host(|h| h.privileged = true);
    let (nodes, rules) = devices(&h, &host_devices()).unwrap();
    assert_eq!(nodes.len(), 6 + 4, "/dev/null is not listed twice");
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow());
    assert_eq!(rules[0].to_string(), "a *:* rwm");
}

#[test]
fn bad_device_requests_fail() {
    let err = |h: HostConfig| devices(&h, &host_devices()).unwrap_err().to_string();
    assert_eq!(
        err(host(|h| h.devices = vec![mapping("/dev/nope", "", "")])),
        "error gathering device information while adding custom device \"/dev/nope\": no such file or directory"
    );
    assert_eq!(
        err(host(|h| h.devices = vec![mapping("/dev/fuse", "", "rwx")])),
        "/dev/fuse invalid device mode: rwx"
    );
    assert_eq!(
        err(host(|h| h.devices = vec![mapping("/dev/fuse", "", "rr")])),
        "/dev/fuse invalid device mode: rr"
    );
    for bad in ["c 1:3", "x 1:3 rwm", "c 1 rwm", "c 1:3 rwmx", "c -1:3 r"] {
        assert_eq!(
            err(host(|h| h.device_cgroup_rules = vec![bad.into()])),
            format!("invalid device cgroup rule format: '{bad}'")
        );
    }
}
