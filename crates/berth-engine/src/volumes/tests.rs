use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use super::*;
use crate::error::ErrorKind;

fn service() -> (tempfile::TempDir, Arc<EventBus>, VolumeService) {
    let t = tempfile::tempdir().unwrap();
    let events = Arc::new(EventBus::default());
    let s = VolumeService::open(t.path().join("volumes"), events.clone()).unwrap();
    (t, events, s)
}

fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn filters(json: &str) -> Filters {
    Filters::parse(Some(json)).unwrap()
}

fn names(list: &VolumeList) -> Vec<&str> {
    list.volumes.iter().map(|v| v.name.as_str()).collect()
}

fn actions(events: &EventBus) -> Vec<String> {
    events
        .subscribe()
        .0
        .iter()
        .map(|e| format!("{}:{}:{}", e.kind, e.action, e.actor.id))
        .collect()
}

#[test]
fn create_inspect_and_reload() {
    let (t, events, s) = service();
    let v = s
        .create(CreateOptions {
            name: Some("data".into()),
            labels: Some(map(&[("a", "b")])),
            ..Default::default()
        })
        .unwrap();
    let root = t.path().join("volumes");
    assert_eq!(v.name, "data");
    assert_eq!(v.driver, "local");
    assert_eq!(v.scope, "local");
    assert_eq!(v.labels, map(&[("a", "b")]));
    assert_eq!(v.options, None);
    assert_eq!(v.mountpoint, root.join("data/_data").display().to_string());
    assert!(root.join("data/_data").is_dir());
    assert!(root.join("data/volume.json").is_file());
    let created = chrono::DateTime::parse_from_rfc3339(&v.created_at).unwrap();
    assert!((chrono::Utc::now().timestamp() - created.timestamp()).abs() < 5);
    assert!(
        !v.created_at.contains('.'),
        "seconds precision: {}",
        v.created_at
    );

    // Creating it again returns the existing volume, labels unchanged, and no second event.
    let again = s
        .create(CreateOptions {
            name: Some("data".into()),
            labels: Some(map(&[("other", "x")])),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(again, v);
    assert_eq!(actions(&events), ["volume:create:data"]);
    assert_eq!(
        events.subscribe().0[0].actor.attributes,
        map(&[("driver", "local")])
    );

    // A second service on the same root sees the same volume.
    let s2 = VolumeService::open(root, Arc::new(EventBus::default())).unwrap();
    assert_eq!(s2.inspect("data").unwrap(), v);
    let err = s2.inspect("nope").unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.message, "get nope: no such volume");
}

#[test]
fn anonymous_volumes_get_a_random_name_and_the_label() {
    let (_t, _e, s) = service();
    let v = s.create(CreateOptions::default()).unwrap();
    assert_eq!(v.name.len(), 64);
    assert_eq!(v.labels, map(&[(ANONYMOUS_LABEL, "")]));
    let named = s.create(CreateOptions::named(Some("n1"))).unwrap();
    assert!(named.labels.is_empty());
}

#[test]
fn create_refuses_like_docker() {
    let (t, _e, s) = service();
    let err = |o: CreateOptions| s.create(o).unwrap_err();
    let e = err(CreateOptions::named(Some("a/b")));
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(
        e.message
            .starts_with("create a/b: \"a/b\" includes invalid characters for a local volume name"),
        "{}",
        e.message
    );
    let e = err(CreateOptions::named(Some("a")));
    assert_eq!(
        e.message,
        "create a: volume name is too short, names should be at least two alphanumeric characters"
    );
    let e = err(CreateOptions {
        name: Some("x1".into()),
        driver: Some("nope".into()),
        ..Default::default()
    });
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        e.message,
        "create x1: error looking up volume plugin nope: plugin \"nope\" not found"
    );
    let e = err(CreateOptions {
        name: Some("x3".into()),
        driver_opts: Some(map(&[("foo", "bar")])),
        ..Default::default()
    });
    assert_eq!(e.message, "create x3: invalid option: \"foo\"");
    // Nothing was left behind by the refusals.
    let entries: Vec<_> = std::fs::read_dir(t.path().join("volumes"))
        .unwrap()
        .collect();
    assert!(entries.is_empty());
    // `..` can never name a directory outside the root.
    assert!(s.create(CreateOptions::named(Some(".."))).is_err());
}

#[test]
fn list_filters() {
    let (_t, _e, s) = service();
    for (name, labels) in [
        ("alpha", map(&[("env", "prod"), ("team", "a")])),
        ("beta", map(&[("env", "dev")])),
        ("gamma2", map(&[])),
    ] {
        s.create(CreateOptions {
            name: Some(name.into()),
            labels: Some(labels),
            ..Default::default()
        })
        .unwrap();
    }
    s.acquire("beta", "c1").unwrap();
    let l = |f: &str| s.list(&filters(f)).unwrap();
    assert_eq!(names(&l("{}")), ["alpha", "beta", "gamma2"]);
    assert_eq!(l("{}").warnings, None);
    assert_eq!(names(&l(r#"{"name":["a"]}"#)), ["alpha", "beta", "gamma2"]);
    assert_eq!(names(&l(r#"{"name":["^a"]}"#)), ["alpha"]);
    assert_eq!(names(&l(r#"{"name":["ta$","mm"]}"#)), ["beta", "gamma2"]);
    assert_eq!(names(&l(r#"{"label":["env"]}"#)), ["alpha", "beta"]);
    assert_eq!(names(&l(r#"{"label":["env=prod"]}"#)), ["alpha"]);
    assert_eq!(names(&l(r#"{"label":["env","team=a"]}"#)), ["alpha"]);
    assert_eq!(names(&l(r#"{"dangling":["true"]}"#)), ["alpha", "gamma2"]);
    assert_eq!(names(&l(r#"{"dangling":{"false":true}}"#)), ["beta"]);
    assert_eq!(names(&l(r#"{"driver":["local"]}"#)).len(), 3);
    assert!(names(&l(r#"{"driver":["loc"]}"#)).is_empty());
    let e = s.list(&filters(r#"{"foo":["bar"]}"#)).unwrap_err();
    assert_eq!(e.message, "invalid filter 'foo'");
    let e = s.list(&filters(r#"{"dangling":["maybe"]}"#)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
}

#[test]
fn remove_refuses_volumes_in_use() {
    let (t, events, s) = service();
    s.create(CreateOptions::named(Some("busy"))).unwrap();
    std::fs::write(t.path().join("volumes/busy/_data/f"), b"x").unwrap();
    s.acquire("busy", "c2").unwrap();
    s.acquire("busy", "c1").unwrap();
    s.acquire("busy", "c1").unwrap();
    assert!(s.acquire("nope", "c1").is_err());
    for force in [false, true] {
        let e = s.remove("busy", force).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert_eq!(e.message, "remove busy: volume is in use - [c1, c2]");
    }
    assert_eq!(s.users("busy").unwrap(), ["c1", "c2"]);
    s.release("busy", "c1");
    s.release("busy", "c2");
    s.release("nope", "c2");
    s.remove("busy", false).unwrap();
    assert!(!t.path().join("volumes/busy").exists());
    assert_eq!(
        s.remove("busy", false).unwrap_err().message,
        "get busy: no such volume"
    );
    s.remove("busy", true).unwrap();
    assert_eq!(
        actions(&events),
        ["volume:create:busy", "volume:destroy:busy"]
    );
    // No trash is left in the root.
    assert_eq!(
        std::fs::read_dir(t.path().join("volumes")).unwrap().count(),
        0
    );
}

#[test]
fn prune_semantics() {
    let (t, events, s) = service();
    let anon = s.create(CreateOptions::default()).unwrap().name;
    let anon_used = s.create(CreateOptions::default()).unwrap().name;
    s.acquire(&anon_used, "c1").unwrap();
    s.create(CreateOptions {
        name: Some("named".into()),
        labels: Some(map(&[("keep", "yes")])),
        ..Default::default()
    })
    .unwrap();
    s.create(CreateOptions::named(Some("plain"))).unwrap();
    s.create(CreateOptions {
        name: Some("tmp".into()),
        driver_opts: Some(map(&[("type", "tmpfs"), ("device", "tmpfs")])),
        ..Default::default()
    })
    .unwrap();
    std::fs::write(
        t.path().join("volumes").join(&anon).join("_data/blob"),
        vec![1u8; 3000],
    )
    .unwrap();

    // Default: only unused anonymous volumes.
    let r = s.prune(&Filters::default()).unwrap();
    assert_eq!(r.volumes_deleted, std::slice::from_ref(&anon));
    assert_eq!(r.space_reclaimed, 3000);
    // all=true: named ones too, but never used ones or ones with driver options; label filters.
    let r = s
        .prune(&filters(r#"{"all":["true"],"label!":["keep=yes"]}"#))
        .unwrap();
    assert_eq!(r.volumes_deleted, ["plain"]);
    let r = s
        .prune(&filters(r#"{"all":["1"],"label":["keep"]}"#))
        .unwrap();
    assert_eq!(r.volumes_deleted, ["named"]);
    let r = s.prune(&filters(r#"{"all":["true"]}"#)).unwrap();
    assert!(r.volumes_deleted.is_empty());
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"VolumesDeleted":[],"SpaceReclaimed":0}"#
    );
    assert!(s.exists(&anon_used) && s.exists("tmp"));
    let e = s.prune(&filters(r#"{"until":["1h"]}"#)).unwrap_err();
    assert_eq!(e.message, "invalid filter 'until'");
    let e = s.prune(&filters(r#"{"all":["yes"]}"#)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    let prunes = actions(&events)
        .iter()
        .filter(|a| a.starts_with("volume:prune"))
        .count();
    assert_eq!(prunes, 4);
}

#[test]
fn copy_up_only_into_empty_volumes() {
    let (t, _e, s) = service();
    let src = t.path().join("image/etc/app");
    std::fs::create_dir_all(src.join("conf.d")).unwrap();
    std::fs::write(src.join("conf.d/a.conf"), b"a=1").unwrap();
    std::os::unix::fs::symlink("conf.d/a.conf", src.join("current")).unwrap();
    s.create(CreateOptions::named(Some("cfg"))).unwrap();
    assert!(s.populate_from("cfg", &src).unwrap());
    let data = s.mount_point("cfg").unwrap();
    assert_eq!(std::fs::read(data.join("conf.d/a.conf")).unwrap(), b"a=1");
    assert_eq!(
        std::fs::read_link(data.join("current")).unwrap(),
        std::path::Path::new("conf.d/a.conf")
    );
    assert_eq!(
        std::fs::metadata(&data).unwrap().mode() & 0o7777,
        std::fs::metadata(&src).unwrap().mode() & 0o7777
    );
    // Not empty any more: a second copy-up does nothing.
    std::fs::write(src.join("new"), b"n").unwrap();
    assert!(!s.populate_from("cfg", &src).unwrap());
    assert!(!data.join("new").exists());
    // A missing source copies nothing; a missing volume is an error.
    s.create(CreateOptions::named(Some("other"))).unwrap();
    assert!(!s.populate_from("other", &t.path().join("missing")).unwrap());
    assert!(s.populate_from("nope", &src).is_err());
}

#[test]
fn disk_usage_counts_refs_and_bytes() {
    let (t, _e, s) = service();
    s.create(CreateOptions::named(Some("big"))).unwrap();
    s.create(CreateOptions {
        name: Some("mnt".into()),
        driver_opts: Some(map(&[("type", "tmpfs"), ("device", "tmpfs")])),
        ..Default::default()
    })
    .unwrap();
    std::fs::write(t.path().join("volumes/big/_data/f"), vec![0u8; 1234]).unwrap();
    s.acquire("big", "c1").unwrap();
    let du = s.disk_usage().unwrap();
    assert_eq!(
        du.len(),
        1,
        "volumes with driver options are left out, as dockerd does"
    );
    assert_eq!(
        du[0].usage_data,
        Some(UsageData {
            ref_count: 1,
            size: 1234
        })
    );
    let json = serde_json::to_string(&du[0]).unwrap();
    assert!(json.ends_with(r#""Scope":"local","UsageData":{"RefCount":1,"Size":1234}}"#));
}

fn can_mount() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn tmpfs_volumes_mount_at_first_use_and_unmount_when_unused() {
    if !can_mount() {
        eprintln!("skipped: needs root to mount");
        return;
    }
    let (_t, events, s) = service();
    s.create(CreateOptions {
        name: Some("scratch".into()),
        driver_opts: Some(map(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m,mode=0750"),
        ])),
        ..Default::default()
    })
    .unwrap();
    let data = s.mount("scratch", "c1", "/scratch", true).unwrap();
    let fs_type = |p: &std::path::Path| rustix::fs::statfs(p).unwrap().f_type;
    assert_eq!(fs_type(&data), 0x0102_1994, "tmpfs is mounted");
    assert_eq!(std::fs::metadata(&data).unwrap().mode() & 0o777, 0o750);
    std::fs::write(data.join("f"), b"x").unwrap();
    s.mount("scratch", "c2", "/scratch", false).unwrap();
    s.unmount("scratch", "c1").unwrap();
    assert_eq!(fs_type(&data), 0x0102_1994, "still used by c2");
    s.unmount("scratch", "c2").unwrap();
    assert!(!data.join("f").exists(), "unmounted when unused");
    // mount_point mounts too; remove unmounts.
    let p = s.mount_point("scratch").unwrap();
    assert_eq!(fs_type(&p), 0x0102_1994);
    s.remove("scratch", false).unwrap();
    assert!(!p.exists());
    let evs = events.subscribe().0;
    let mount = evs.iter().find(|e| e.action == "mount").unwrap();
    assert_eq!(
        mount.actor.attributes,
        map(&[
            ("container", "c1"),
            ("destination", "/scratch"),
            ("driver", "local"),
            ("propagation", ""),
            ("read/write", "true"),
        ])
    );
    assert_eq!(evs.iter().filter(|e| e.action == "unmount").count(), 2);
}

#[test]
fn bind_volumes_show_the_device_directory() {
    if !can_mount() {
        eprintln!("skipped: needs root to mount");
        return;
    }
    let (t, _e, s) = service();
    let host = t.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("hello"), b"hi").unwrap();
    s.create(CreateOptions {
        name: Some("b1".into()),
        driver_opts: Some(map(&[
            ("type", "none"),
            ("device", host.to_str().unwrap()),
            ("o", "bind,ro"),
        ])),
        ..Default::default()
    })
    .unwrap();
    let data = s.mount("b1", "c1", "/b", true).unwrap();
    assert_eq!(std::fs::read(data.join("hello")).unwrap(), b"hi");
    assert!(std::fs::write(data.join("new"), b"x").is_err(), "read-only");
    // A daemon restart undoes stale mounts.
    let s2 = VolumeService::open(t.path().join("volumes"), Arc::new(EventBus::default())).unwrap();
    assert!(!data.join("hello").exists());
    // Removing never touches the device's content.
    s2.remove("b1", false).unwrap();
    assert_eq!(std::fs::read(host.join("hello")).unwrap(), b"hi");

    s.create(CreateOptions {
        name: Some("b2".into()),
        driver_opts: Some(map(&[
            ("type", "none"),
            ("device", "/nonexistent-berth"),
            ("o", "bind"),
        ])),
        ..Default::default()
    })
    .unwrap();
    let e = s.mount_point("b2").unwrap_err();
    assert!(
        e.message
            .contains("failed to mount local volume: mount /nonexistent-berth:"),
        "{}",
        e.message
    );
    drop(s);
}
