//! Volumes through the unmodified docker CLI and the berth CLI against berthd: outputs
//! compared byte for byte, errors and exit codes, the API bodies, prune semantics, events.

use std::io::Write;
use std::process::{Output, Stdio};

use berth_tests::{Daemon, json_lines};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the same arguments through both CLIs and asserts identical stdout, stderr (with the
/// program name made the same) and exit status.
fn same(d: &Daemon, args: &[&str]) -> Output {
    let docker = d.docker(args);
    let berth = d.berth(args);
    assert_eq!(
        text(&berth.stdout),
        text(&docker.stdout),
        "stdout of {args:?} (left berth, right docker)"
    );
    assert_eq!(
        text(&berth.stderr).replace("berth", "docker"),
        text(&docker.stderr),
        "stderr of {args:?} (left berth, right docker)"
    );
    assert_eq!(
        berth.status.code(),
        docker.status.code(),
        "status of {args:?}"
    );
    docker
}

fn with_stdin(mut cmd: std::process::Command, args: &[&str], input: &str) -> Output {
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn names(d: &Daemon) -> Vec<String> {
    d.docker_ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn ls_and_inspect_match_docker_byte_for_byte() {
    let d = Daemon::start();
    assert_eq!(d.docker_ok(&["volume", "create", "data"]), "data\n");
    assert_eq!(
        d.berth_ok(&["volume", "create", "--label", "env=prod", "web10"]),
        "web10\n"
    );
    d.docker_ok(&["volume", "create", "--label", "env=dev", "web9"]);
    d.docker_ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "scratch",
    ]);
    let anon = d.docker_ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64, "{anon}");
    assert!(anon.chars().all(|c| c.is_ascii_hexdigit()));

    let table = same(&d, &["volume", "ls"]);
    let table = text(&table.stdout);
    // Natural order: web9 before web10.
    assert!(
        table.starts_with("DRIVER    VOLUME NAME\n")
            && table.find("web9").unwrap() < table.find("web10").unwrap(),
        "{table}"
    );
    for args in [
        &["volume", "ls", "-q"][..],
        &["volume", "list", "--format", "json"],
        &[
            "volume",
            "ls",
            "--format",
            "{{.Name}}\t{{.Driver}} {{.Scope}} {{.Links}} {{.Size}} {{.Labels}}",
        ],
        &[
            "volume",
            "ls",
            "--format",
            "table {{.Name}}\t{{.Mountpoint}}\t{{.Labels}}",
        ],
        &["volume", "ls", "--format", "raw"],
        &["volume", "ls", "-f", "label=env"],
        &["volume", "ls", "-f", "label=env=prod", "-q"],
        &["volume", "ls", "-f", "name=web", "-f", "dangling=true"],
        &["volume", "ls", "-f", "name=^da"],
        &["volume", "ls", "-f", "driver=local", "-q"],
        &["volume", "ls", "-f", "driver=loc", "-q"],
        &["volume", "inspect", "data", "scratch", "web10"],
        &["volume", "inspect", "--format", "json", "data", "scratch"],
        &[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Labels}} {{.Options}} {{.Scope}} {{.Mountpoint}}",
            "data",
            "scratch",
            &anon,
        ],
        &[
            "volume",
            "inspect",
            "-f",
            "{{json .Labels}} {{index .Options \"type\"}}",
            "scratch",
        ],
        &["inspect", "--type", "volume", "web9"],
        &["inspect", "-f", "{{.Name}}", "web9"],
        // Errors: the daemon's messages and the exit codes.
        &["volume", "inspect", "data", "nope"],
        &["volume", "ls", "-f", "bogus=1"],
        &["volume", "ls", "-f", "dangling=maybe"],
        &["volume", "ls", "extra"],
        &["volume", "inspect"],
        &["volume", "rm"],
        &["volume", "rm", "nope"],
        &["volume", "create", "a"],
        &["volume", "create", "a/b"],
        &["volume", "create", "-d", "nope", "x1"],
        &["volume", "create", "-o", "foo=bar", "x2"],
        &["volume", "create", "-o", "type=tmpfs", "x3"],
        &["volume", "create", "-o", "size=1m", "x4"],
        &["volume", "create", "--name", "x5", "x6"],
        &["volume", "prune", "extra"],
    ] {
        same(&d, args);
    }

    let inspect: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["volume", "inspect", "data", "scratch", &anon]))
            .unwrap();
    let data = &inspect[0];
    assert_eq!(data["Driver"], "local");
    assert_eq!(data["Scope"], "local");
    assert_eq!(data["Labels"], serde_json::json!({}));
    assert_eq!(data["Options"], serde_json::Value::Null);
    assert!(data.get("UsageData").is_none());
    let mountpoint = d.data_root().join("volumes/data/_data");
    assert_eq!(data["Mountpoint"], mountpoint.display().to_string());
    assert!(mountpoint.is_dir());
    assert!(d.data_root().join("volumes/data/volume.json").is_file());
    // RFC 3339 with seconds and a zone, as Go's time.RFC3339.
    let created = data["CreatedAt"].as_str().unwrap();
    assert!(chrono_like(created), "{created}");
    assert_eq!(
        inspect[1]["Options"],
        serde_json::json!({"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    );
    assert_eq!(
        inspect[2]["Labels"],
        serde_json::json!({"com.docker.volume.anonymous": ""})
    );
    let rows = json_lines(&d.berth_ok(&["volume", "ls", "--format", "json"]));
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter()
            .all(|r| r["Links"] == "N/A" && r["Status"] == "N/A")
    );
}

/// `2026-11-23T08:10:00Z` or `…+01:00`.
fn chrono_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] != b'.'
        && (s.ends_with('Z') || s[19..].starts_with('+') || s[19..].starts_with('-'))
}

#[test]
fn create_existing_returns_it_and_volumes_survive_a_restart() {
    let mut d = Daemon::start();
    d.docker_ok(&["volume", "create", "--label", "a=1", "keep"]);
    let before = d.docker_ok(&["volume", "inspect", "keep"]);
    std::fs::write(d.data_root().join("volumes/keep/_data/file"), b"payload").unwrap();
    // The same name again: the existing volume, labels unchanged.
    assert_eq!(
        d.berth_ok(&["volume", "create", "--label", "b=2", "keep"]),
        "keep\n"
    );
    assert_eq!(d.docker_ok(&["volume", "inspect", "keep"]), before);
    d.restart();
    assert_eq!(d.docker_ok(&["volume", "inspect", "keep"]), before);
    assert_eq!(
        std::fs::read(d.data_root().join("volumes/keep/_data/file")).unwrap(),
        b"payload"
    );
    // rm prints the name; -f on a missing volume succeeds quietly as docker.
    same(&d, &["volume", "rm", "-f", "ghost"]);
    assert_eq!(d.berth_ok(&["volume", "rm", "keep"]), "keep\n");
    assert!(!d.data_root().join("volumes/keep").exists());
    let out = d.docker(&["volume", "rm", "keep", "other"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error response from daemon: get keep: no such volume\nError response from daemon: get other: no such volume\n"
    );
    let out = d.berth(&["volume", "rm", "keep", "other"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error response from daemon: get keep: no such volume\nError response from daemon: get other: no such volume\n"
    );
}

#[test]
fn prune_takes_anonymous_volumes_unless_all() {
    let d = Daemon::start();
    // The same scenario through each CLI: the outputs must be identical apart from the
    // random names of the anonymous volumes.
    let mut outputs = Vec::new();
    for cli in ["docker", "berth"] {
        let run = |args: &[&str], input: &str| {
            let cmd = if cli == "docker" {
                d.docker_cmd()
            } else {
                d.berth_cmd()
            };
            let out = with_stdin(cmd, args, input);
            assert!(
                out.status.success(),
                "{cli} {args:?}: {}",
                text(&out.stderr)
            );
            text(&out.stdout)
        };
        let anon = run(&["volume", "create"], "").trim().to_string();
        std::fs::write(
            d.data_root().join("volumes").join(&anon).join("_data/blob"),
            vec![7u8; 2048],
        )
        .unwrap();
        run(&["volume", "create", "named"], "");
        run(&["volume", "create", "--label", "keep=yes", "kept"], "");
        run(
            &[
                "volume",
                "create",
                "-o",
                "type=tmpfs",
                "-o",
                "device=tmpfs",
                "opts",
            ],
            "",
        );
        let mut transcript = String::new();
        transcript.push_str(&run(&["volume", "prune"], "n\n"));
        transcript.push_str(&run(&["volume", "prune"], "y\n").replace(&anon, "ANON"));
        transcript.push_str(&run(
            &["volume", "prune", "-a", "--filter", "label!=keep=yes"],
            "y\n",
        ));
        transcript.push_str(&run(
            &["volume", "prune", "-af", "--filter", "label=keep"],
            "",
        ));
        transcript.push_str(&run(&["volume", "prune", "-a", "-f"], ""));
        outputs.push(transcript);
        // Volumes with driver options are never pruned (dockerd: no space to reclaim).
        assert_eq!(names(&d), ["opts"]);
        run(&["volume", "rm", "opts"], "");
    }
    assert_eq!(outputs[1], outputs[0], "left berth, right docker");
    assert_eq!(
        outputs[0],
        "WARNING! This will remove anonymous local volumes not used by at least one container.\n\
         Are you sure you want to continue? [y/N] \
         WARNING! This will remove anonymous local volumes not used by at least one container.\n\
         Are you sure you want to continue? [y/N] Deleted Volumes:\nANON\n\nTotal reclaimed space: 2.048kB\n\
         WARNING! This will remove all local volumes not used by at least one container.\n\
         Are you sure you want to continue? [y/N] Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n\
         Deleted Volumes:\nkept\n\nTotal reclaimed space: 0B\n\
         Total reclaimed space: 0B\n"
    );
    same(&d, &["volume", "prune", "-a", "-f", "--filter", "all=1"]);
    same(&d, &["volume", "prune", "-f", "--filter", "until=1h"]);

    // Before API 1.42 prune took named volumes too.
    d.docker_ok(&["volume", "create", "old-style"]);
    let (status, _, body) = d.request("POST", "/v1.41/volumes/prune", None);
    assert_eq!(status, 200);
    assert_eq!(
        text(&body),
        r#"{"VolumesDeleted":["old-style"],"SpaceReclaimed":0}"#
    );
    let (status, _, body) = d.request("POST", "/volumes/prune", None);
    assert_eq!(status, 200);
    assert_eq!(text(&body), r#"{"VolumesDeleted":[],"SpaceReclaimed":0}"#);
}

#[test]
fn api_bodies_and_statuses_like_dockerd() {
    let d = Daemon::start();
    let (status, _, body) = d.request("GET", "/volumes", None);
    assert_eq!(status, 200);
    assert_eq!(text(&body), r#"{"Volumes":[],"Warnings":null}"#);

    let (status, _, body) = d.request(
        "POST",
        "/v1.47/volumes/create",
        Some(br#"{"Name":"api1","Driver":"local","DriverOpts":{},"Labels":{"x":"y"}}"#),
    );
    assert_eq!(status, 201, "{}", text(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
    );
    assert_eq!(v["Labels"], serde_json::json!({"x": "y"}));

    // An empty body is an anonymous volume.
    let (status, _, body) = d.request("POST", "/volumes/create", None);
    assert_eq!(status, 201);
    let anon: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(anon["Name"].as_str().unwrap().len(), 64);

    let (status, _, body) = d.request(
        "GET",
        "/volumes?filters=%7B%22name%22%3A%5B%22api%22%5D%7D",
        None,
    );
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list["Volumes"].as_array().unwrap().len(), 1);
    assert_eq!(list["Warnings"], serde_json::Value::Null);

    for (method, path, body, want_status, want) in [
        (
            "GET",
            "/volumes/nope",
            None,
            404,
            r#"{"message":"get nope: no such volume"}"#,
        ),
        (
            "DELETE",
            "/volumes/nope",
            None,
            404,
            r#"{"message":"get nope: no such volume"}"#,
        ),
        (
            "POST",
            "/volumes/create",
            Some(&br#"{"Name":"x1","Driver":"nfs-plugin"}"#[..]),
            404,
            r#"{"message":"create x1: error looking up volume plugin nfs-plugin: plugin \"nfs-plugin\" not found"}"#,
        ),
        (
            "POST",
            "/volumes/create",
            Some(&br#"{"Name":"../x"}"#[..]),
            400,
            r#"{"message":"create ../x: \"../x\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"}"#,
        ),
        (
            "POST",
            "/volumes/prune?filters=%7B%22all%22%3A%5B%22maybe%22%5D%7D",
            None,
            400,
            r#"{"message":"invalid filter 'all': strconv.ParseBool: parsing \"maybe\": invalid syntax"}"#,
        ),
    ] {
        let (status, _, got) = d.request(method, path, body);
        assert_eq!(
            (status, text(&got).as_str()),
            (want_status, want),
            "{method} {path}"
        );
    }
    // Volumes named like the static routes are still reachable.
    d.docker_ok(&["volume", "create", "prune"]);
    let (status, _, _) = d.request("GET", "/volumes/prune", None);
    assert_eq!(status, 200);
    let (status, _, body) = d.request("DELETE", "/volumes/prune?force=1", None);
    assert_eq!((status, body.len()), (204, 0));
    let (status, _, body) = d.request("DELETE", "/volumes/api1", None);
    assert_eq!((status, body.len()), (204, 0));
    assert!(!d.data_root().join("volumes/api1").exists());
}

#[test]
fn system_df_and_events_report_volumes() {
    let d = Daemon::start();
    d.docker_ok(&["volume", "create", "big"]);
    d.docker_ok(&["volume", "create", "small"]);
    std::fs::write(
        d.data_root().join("volumes/big/_data/blob"),
        vec![1u8; 1_500_000],
    )
    .unwrap();
    let (_, _, body) = d.request("GET", "/system/df", None);
    let df: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let vols = df["Volumes"].as_array().unwrap();
    assert_eq!(vols.len(), 2);
    let big = vols.iter().find(|v| v["Name"] == "big").unwrap();
    assert_eq!(
        big["UsageData"],
        serde_json::json!({"RefCount": 0, "Size": 1_500_000})
    );
    let out = same(&d, &["system", "df"]);
    let volumes_row = text(&out.stdout)
        .lines()
        .find(|l| l.starts_with("Local Volumes"))
        .unwrap()
        .to_string();
    assert_eq!(
        volumes_row.split_whitespace().collect::<Vec<_>>(),
        ["Local", "Volumes", "2", "0", "1.5MB", "1.5MB", "(100%)"]
    );
    let out = text(&same(&d, &["system", "df", "-v"]).stdout);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["big", "0", "1.5MB"]),
        "{out}"
    );

    d.docker_ok(&["volume", "rm", "small"]);
    d.docker_ok(&["volume", "prune", "-af"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let events = d.docker_ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        &now.to_string(),
        "--filter",
        "type=volume",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}",
    ]);
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "volume create big local",
            "volume create small local",
            "volume destroy small local",
            "volume destroy big local",
        ],
        "{events}"
    );
    assert!(lines[4].starts_with("volume prune "), "{events}");
    let only_big = d.docker_ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        &now.to_string(),
        "--filter",
        "volume=big",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(only_big, "create\ndestroy\n");
}
