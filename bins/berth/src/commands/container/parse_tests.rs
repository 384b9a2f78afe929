//! Unit tests of `parse.rs`.

use super::*;

#[test]
fn sizes() {
    assert_eq!(ram_in_bytes("512m"), Ok(536_870_912));
    assert_eq!(ram_in_bytes("1.5g"), Ok(1_610_612_736));
    assert_eq!(ram_in_bytes("100"), Ok(100));
    assert_eq!(ram_in_bytes("64MiB"), Ok(67_108_864));
    assert_eq!(ram_in_bytes("1 kb"), Ok(1024));
    assert_eq!(ram_in_bytes("foo"), Err("invalid size: 'foo'".into()));
    assert_eq!(ram_in_bytes("12x"), Err("invalid size: '12x'".into()));
    assert_eq!(mem_swap("-1"), Ok(-1));
}

#[test]
fn cpus_and_durations() {
    assert_eq!(nano_cpus("1.5"), Ok(1_500_000_000));
    assert_eq!(nano_cpus("0.001"), Ok(1_000_000));
    assert_eq!(nano_cpus("3/2"), Ok(1_500_000_000));
    assert_eq!(
        nano_cpus("abc"),
        Err("failed to parse abc as a rational number".into())
    );
    assert_eq!(
        nano_cpus("0.0000000001"),
        Err("value is too precise".into())
    );
    assert_eq!(go_duration("30s"), Ok(30_000_000_000));
    assert_eq!(go_duration("1m30s"), Ok(90_000_000_000));
    assert_eq!(
        go_duration("5"),
        Err("time: missing unit in duration \"5\"".into())
    );
    assert_eq!(go_duration("x"), Err("time: invalid duration \"x\"".into()));
}

#[test]
fn restart_policies() {
    assert_eq!(restart_policy("on-failure:3"), Ok(("on-failure".into(), 3)));
    assert_eq!(restart_policy("always"), Ok(("always".into(), 0)));
    assert_eq!(restart_policy("no"), Ok(("no".into(), 0)));
    assert_eq!(
        restart_policy("on-failure:x"),
        Err("invalid restart policy format: maximum retry count must be an integer".into())
    );
    assert_eq!(
        restart_policy(":3"),
        Err("invalid restart policy format: no policy provided before colon".into())
    );
}

#[test]
fn mounts() {
    let m = mount("type=bind,src=/tmp,dst=/b,readonly,bind-propagation=rshared").unwrap();
    assert_eq!(m.mount.typ, Some(MountType::BIND));
    assert_eq!(m.mount.source.as_deref(), Some("/tmp"));
    assert_eq!(m.mount.target.as_deref(), Some("/b"));
    assert_eq!(m.mount.read_only, Some(true));
    assert_eq!(
        m.mount.bind_options.unwrap().propagation,
        Some(MountBindOptionsPropagationEnum::RSHARED)
    );
    let m = mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777").unwrap();
    let t = m.mount.tmpfs_options.unwrap();
    assert_eq!((t.size_bytes, t.mode), (Some(1_048_576), Some(0o1777)));
    let m = mount("source=v2,target=/v2,volume-opt=a=b").unwrap();
    assert_eq!(m.mount.typ, Some(MountType::VOLUME));
    let dc = m.mount.volume_options.unwrap().driver_config.unwrap();
    assert_eq!(dc.options.unwrap()["a"], "b");
    let m = mount("type=volume,destination=/x,ro=false").unwrap();
    assert_eq!(m.mount.read_only, Some(false));
    assert_eq!(mount("type=bind").unwrap_err(), "target is required");
    assert_eq!(
        mount("foo").unwrap_err(),
        "invalid field 'foo' must be a key=value pair"
    );
    assert_eq!(
        mount("target=/x,ro=maybe").unwrap_err(),
        "invalid value for ro: maybe"
    );
    assert_eq!(
        mount("type=volume,target=/x,bind-propagation=shared").unwrap_err(),
        "cannot mix 'bind-*' options with mount type 'volume'"
    );
    assert_eq!(
        mount("target=/x,foo=bar").unwrap_err(),
        "unexpected key 'foo' in 'foo=bar'"
    );
}

#[test]
fn volumes() {
    assert_eq!(
        volume("/tmp:/mnt:ro"),
        Ok(VolumeSpec::Bind("/tmp:/mnt:ro".into()))
    );
    assert_eq!(
        volume("named:/data"),
        Ok(VolumeSpec::Bind("named:/data".into()))
    );
    assert_eq!(volume("/anon"), Ok(VolumeSpec::Anonymous("/anon".into())));
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        volume("./x:/y"),
        Ok(VolumeSpec::Bind(format!("{}/x:/y", cwd.display())))
    );
}

#[test]
fn ports() {
    let (mut e, mut b) = (Vec::new(), Vec::new());
    publish(
        &["8080:80".into(), "127.0.0.1::53/udp".into()],
        &mut e,
        &mut b,
    )
    .unwrap();
    assert_eq!(e, vec!["80/tcp".to_string(), "53/udp".to_string()]);
    assert_eq!(b[0].1.host_port.as_deref(), Some("8080"));
    assert_eq!(b[1].1.host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        publish(&["abc".into()], &mut e, &mut b).unwrap_err(),
        "invalid containerPort: abc"
    );
    expose("9000-9001", &mut e).unwrap();
    assert!(e.contains(&"9001/tcp".to_string()));
    assert!(expose("foo", &mut e).unwrap_err().starts_with(
        "invalid range format for --expose: foo, error: strconv.ParseUint: parsing \"foo\""
    ));
}

#[test]
fn misc_values() {
    let u = ulimit("nofile=1024:2048").unwrap();
    assert_eq!((u.soft, u.hard), (Some(1024), Some(2048)));
    assert_eq!(ulimit("foo").unwrap_err(), "invalid ulimit argument: foo");
    assert_eq!(extra_host("h:1.2.3.4"), Ok("h:1.2.3.4".into()));
    assert_eq!(
        extra_host("foo").unwrap_err(),
        "bad format for add-host: \"foo\""
    );
    assert_eq!(
        sysctl("foo=1").unwrap_err(),
        "sysctl 'foo=1' is not allowed"
    );
    assert_eq!(capability("net_admin"), "CAP_NET_ADMIN");
    assert_eq!(capability("ALL"), "ALL");
    assert_eq!(detach_keys("ctrl-p,ctrl-q"), Ok(vec![16, 17]));
    let d = device("/dev/null:/dev/xnull:r").unwrap();
    assert_eq!(d.path_in_container.as_deref(), Some("/dev/xnull"));
    assert_eq!(d.cgroup_permissions.as_deref(), Some("r"));
    assert_eq!(
        device("foo:bar:baz:qux").unwrap_err(),
        "bad format for path: foo:bar:baz:qux"
    );
    assert_eq!(
        env_var("=x").unwrap_err(),
        "invalid environment variable: =x"
    );
    assert_eq!(env_var("A=b"), Ok("A=b".into()));
}
