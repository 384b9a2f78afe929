//! Unit tests of `opts.rs`.

use super::*;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(disable_help_flag = true)]
struct T {
    #[command(flatten)]
    o: ContainerOpts,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

fn body(args: &str) -> serde_json::Value {
    let t = T::try_parse_from(std::iter::once("t").chain(args.split_whitespace())).unwrap();
    t.o.build(&t.rest[0], &t.rest[1..]).unwrap().to_json()
}

fn err(args: &str) -> String {
    let t = T::try_parse_from(std::iter::once("t").chain(args.split_whitespace())).unwrap();
    t.o.build(&t.rest[0], &t.rest[1..]).unwrap_err()
}

#[test]
fn plain_run_body() {
    let b = body("busybox true");
    assert_eq!(b["Image"], "busybox");
    assert_eq!(b["Cmd"], serde_json::json!(["true"]));
    assert_eq!(b["AttachStdout"], true);
    assert_eq!(b["AttachStdin"], false);
    assert_eq!(b["StdinOnce"], false);
    assert!(b.get("StopSignal").is_none());
    let hc = &b["HostConfig"];
    assert_eq!(hc["NetworkMode"], "default");
    assert_eq!(
        hc["RestartPolicy"],
        serde_json::json!({"Name": "no", "MaximumRetryCount": 0})
    );
    assert_eq!(hc["MemorySwappiness"], -1);
    assert_eq!(
        b["NetworkingConfig"]["EndpointsConfig"],
        serde_json::json!({"default": {}})
    );
}

#[test]
fn full_run_body() {
    let b = body(
        "-i -t -e FOO=1 -l a=b --restart on-failure:3 -m 512m --memory-swap -1 --cpus 1.5 \
         --health-cmd true --health-interval 30s -v /tmp:/mnt:ro -v named:/data -v /anon \
         --mount type=tmpfs,target=/t,tmpfs-mode=1777 -p 8080:80 --expose 9000-9001 \
         --ulimit nofile=1024:2048 --cap-add net_admin --shm-size 64m --init \
         --pids-limit 100 --stop-signal SIGINT --stop-timeout 5 -w /tmp -u nobody \
         --entrypoint sh --tmpfs /run:rw,size=1m busybox -c true",
    );
    assert_eq!(b["Entrypoint"], serde_json::json!(["sh"]));
    assert_eq!(b["Cmd"], serde_json::json!(["-c", "true"]));
    assert_eq!(b["StdinOnce"], true);
    assert_eq!(b["Tty"], true);
    assert_eq!(b["Env"], serde_json::json!(["FOO=1"]));
    assert_eq!(b["Labels"], serde_json::json!({"a": "b"}));
    assert_eq!(b["Volumes"], serde_json::json!({"/anon": {}}));
    assert_eq!(
        b["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "9000/tcp": {}, "9001/tcp": {}})
    );
    assert_eq!(
        b["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000i64})
    );
    assert_eq!(b["StopSignal"], "SIGINT");
    assert_eq!(b["StopTimeout"], 5);
    let hc = &b["HostConfig"];
    assert_eq!(
        hc["Binds"],
        serde_json::json!(["/tmp:/mnt:ro", "named:/data"])
    );
    assert_eq!(
        hc["RestartPolicy"],
        serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 3})
    );
    assert_eq!(hc["Memory"], 536_870_912);
    assert_eq!(hc["MemorySwap"], -1);
    assert_eq!(hc["NanoCpus"], 1_500_000_000i64);
    assert_eq!(hc["ShmSize"], 67_108_864);
    assert_eq!(hc["PidsLimit"], 100);
    assert_eq!(hc["Init"], true);
    assert_eq!(hc["CapAdd"], serde_json::json!(["CAP_NET_ADMIN"]));
    assert_eq!(hc["Tmpfs"], serde_json::json!({"/run": "rw,size=1m"}));
    assert_eq!(
        hc["PortBindings"],
        serde_json::json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
    );
    assert_eq!(
        hc["Ulimits"],
        serde_json::json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}])
    );
    assert_eq!(
        hc["Mounts"],
        serde_json::json!([{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Mode": 1023}}])
    );
}

#[test]
fn unknown_names_reach_the_daemon() {
    let b = body("--restart bogus --mount type=weird,target=/x busybox");
    assert_eq!(b["HostConfig"]["RestartPolicy"]["Name"], "bogus");
    assert_eq!(b["HostConfig"]["Mounts"][0]["Type"], "weird");
}

#[test]
fn validation_messages() {
    assert_eq!(
        err("--rm --restart always busybox"),
        "conflicting options: cannot specify both --restart and --rm"
    );
    assert_eq!(
        err("--no-healthcheck --health-cmd x busybox"),
        "--no-healthcheck conflicts with --health-* options"
    );
    assert_eq!(
        err("--memory-swappiness 200 busybox"),
        "invalid value: 200. Valid memory swappiness range is 0-100"
    );
    assert_eq!(err("-p abc busybox"), "invalid containerPort: abc");
    assert_eq!(
        err("--device foo:bar:baz:qux busybox"),
        "bad format for path: foo:bar:baz:qux"
    );
    assert_eq!(
        validate_pull("bogus").unwrap_err(),
        "invalid pull option: 'bogus': must be one of \"always\", \"missing\" or \"never\""
    );
    let b = body("--no-healthcheck --network none busybox");
    assert_eq!(b["Healthcheck"], serde_json::json!({"Test": ["NONE"]}));
    assert_eq!(b["HostConfig"]["NetworkMode"], "none");
    assert_eq!(
        b["NetworkingConfig"]["EndpointsConfig"],
        serde_json::json!({})
    );
}
