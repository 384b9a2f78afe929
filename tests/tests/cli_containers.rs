//! `berth` container commands against berthd, side by side with the docker CLI on the same
//! daemon: the same output and exit codes for run/ps/inspect/logs/exec/cp/rename/wait.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_tests::{Daemon, tail};

/// A daemon with `busybox:latest` loaded through the berth CLI.
fn daemon_with_busybox() -> Daemon {
    let d = Daemon::start();
    let archive = d.busybox_archive();
    d.berth_ok(&["load", "-i", archive.to_str().unwrap()]);
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// docker's messages name docker; berth's name berth.
fn as_berth(s: &str) -> String {
    s.replace("docker", "berth")
}

fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Both CLIs print the same stdout and stderr and exit alike. Relative times may tick over
/// between the calls, so docker runs on both sides of berth and either output counts.
fn same(d: &Daemon, args: &[&str]) -> Output {
    let before = d.docker(args);
    let berth = d.berth(args);
    let after = d.docker(args);
    let matches = |docker: &Output| {
        docker.status.code() == berth.status.code()
            && text(&docker.stdout) == text(&berth.stdout)
            && as_berth(&text(&docker.stderr)) == text(&berth.stderr)
    };
    assert!(
        matches(&before) || matches(&after),
        "`{}` differs:\nberth ({:?}):\n{}{}\n---\ndocker ({:?}):\n{}{}\ndaemon log:\n{}",
        args.join(" "),
        berth.status.code(),
        text(&berth.stdout),
        text(&berth.stderr),
        after.status.code(),
        text(&after.stdout),
        text(&after.stderr),
        tail(&d.log(), 30)
    );
    berth
}

#[test]
fn flag_and_validation_errors_match_docker() {
    let d = daemon_with_busybox();
    for args in [
        &["run"][..],
        &["run", "-m", "foo", "busybox"],
        &["run", "--cpus", "abc", "busybox"],
        &["run", "--health-interval", "5", "busybox"],
        &["run", "--mount", "type=bind", "busybox"],
        &["run", "--mount", "foo", "busybox"],
        &["run", "-a", "foo", "busybox"],
        &["run", "-e", "=x", "busybox"],
        &["run", "--ulimit", "foo", "busybox"],
        &["run", "--add-host", "foo", "busybox"],
        &["run", "--rm", "--restart", "always", "busybox"],
        &["run", "--restart", "on-failure:x", "busybox"],
        &["run", "--pull", "bogus", "busybox"],
        &["run", "--no-healthcheck", "--health-cmd", "x", "busybox"],
        &["run", "-p", "abc", "busybox"],
        &["run", "--expose", "foo", "busybox"],
        &["run", "--device", "foo:bar:baz:qux", "busybox"],
        &["run", "--memory-swappiness", "200", "busybox"],
        &["run", "-d", "-a", "stdout", "busybox"],
        &["create", "--stop-timeout", "x", "busybox"],
        &["ps", "-x"],
        &["cp", "a", "b"],
        &["update", "x"],
    ] {
        let out = same(&d, args);
        assert_ne!(out.status.code(), Some(0), "{args:?} succeeded");
    }
}

/// Needs: POST /containers/create (?name=), POST /containers/{id}/attach with Upgrade: tcp
/// answered 101 then stdcopy frames, POST /containers/{id}/wait?condition=next-exit|removed
/// sent before POST /containers/{id}/start, start errors that name the cause ("executable
/// file not found", "permission denied"), AutoRemove, GET /containers/json?all=1&filters=.
#[test]
fn run_exit_codes_and_rm() {
    let d = daemon_with_busybox();
    let out = same(&d, &["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(text(&out.stdout), "hello\n");
    let out = same(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    let out = d.berth(&["run", "--rm", "busybox", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(text(&out.stderr).starts_with("berth: Error response from daemon: "));
    let out = d.berth(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    let out = d.berth(&["run", "--rm", "nosuch-image-here:1"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("Unable to find image 'nosuch-image-here:1' locally\n"),
        "{}",
        text(&out.stderr)
    );
    // --rm: nothing left behind.
    d.berth_ok(&["run", "--rm", "--name", "gone", "busybox", "true"]);
    let left = d.berth_ok(&["ps", "-a", "-q", "--filter", "name=gone"]);
    assert_eq!(left, "");
    // Without --rm the container stays, exited, with its status.
    let out = d.berth(&["run", "--name", "kept", "busybox", "sh", "-c", "exit 2"]);
    assert_eq!(out.status.code(), Some(2));
    let status = d.berth_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "kept",
    ]);
    assert_eq!(status, "exited 2\n");
    same(&d, &["ps", "-a"]);
    same(&d, &["ps", "-a", "--no-trunc"]);
    same(&d, &["ps", "-a", "--format", "json"]);
    same(&d, &["wait", "kept"]);
    assert_eq!(d.berth_ok(&["rm", "kept"]), "kept\n");
    same(&d, &["rm", "kept"]);
    same(&d, &["rm", "-f", "kept"]);
}

/// Needs: run -d, GET /containers/{id}/logs (stdcopy frames, timestamps, tail),
/// POST /containers/{id}/exec + POST /exec/{id}/start (hijacked) + GET /exec/{id}/json
/// (ExitCode), GET /containers/json (Status "Up …"), GET /containers/{id}/json,
/// /containers/{id}/top, POST stop/kill/restart/pause/unpause, DELETE /containers/{id}.
#[test]
fn detached_logs_exec_and_lifecycle() {
    let d = daemon_with_busybox();
    let id = d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "bg",
        "-l",
        "team=a",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; sleep 1000",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    std::thread::sleep(Duration::from_millis(500));
    let logs = same(&d, &["logs", "bg"]);
    assert_eq!(text(&logs.stdout), "out\n");
    assert_eq!(text(&logs.stderr), "err\n");
    same(&d, &["logs", "--tail", "1", "bg"]);
    same(&d, &["logs", "nosuch"]);
    let out = same(&d, &["exec", "bg", "echo", "inexec"]);
    assert_eq!(text(&out.stdout), "inexec\n");
    let out = same(&d, &["exec", "bg", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let out = same(
        &d,
        &[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "bg",
            "sh",
            "-c",
            "echo $X; pwd",
        ],
    );
    assert_eq!(text(&out.stdout), "1\n/tmp\n");
    let out = d.berth(&["exec", "bg", "nosuchcmd"]);
    assert!(
        matches!(out.status.code(), Some(126 | 127)),
        "{:?} {}",
        out.status.code(),
        text(&out.stderr)
    );
    same(&d, &["exec", "nosuch", "true"]);
    for args in [
        &["ps"][..],
        &["ps", "-a", "--no-trunc"],
        &["ps", "-q"],
        &["ps", "-s"],
        &["ps", "--format", "json"],
        &[
            "ps",
            "--format",
            "{{.Names}} {{.Label \"team\"}} {{.State}} {{.Command}}",
        ],
        &[
            "ps",
            "--filter",
            "label=team=a",
            "--format",
            "table {{.ID}}\t{{.Names}}",
        ],
        &["ps", "-l"],
        &["inspect", "bg"],
        &[
            "container",
            "inspect",
            "-f",
            "{{.Name}} {{.Config.Cmd}}",
            "bg",
        ],
        &["inspect", "--type", "container", "nosuch"],
        &["port", "bg"],
    ] {
        same(&d, args);
    }
    let top = d.berth_ok(&["top", "bg"]);
    assert!(top.starts_with("UID") || top.contains("PID"), "{top}");
    assert_eq!(d.berth_ok(&["pause", "bg"]), "bg\n");
    same(&d, &["ps", "--format", "{{.Names}} {{.Status}} {{.State}}"]);
    assert_eq!(d.berth_ok(&["unpause", "bg"]), "bg\n");
    assert_eq!(d.berth_ok(&["stop", "-t", "1", "bg"]), "bg\n");
    same(&d, &["stop", "nosuch", "other"]);
    same(&d, &["start", "nosuch"]);
    assert_eq!(d.berth_ok(&["start", "bg"]), "bg\n");
    assert_eq!(d.berth_ok(&["restart", "-t", "1", "bg"]), "bg\n");
    assert_eq!(d.berth_ok(&["kill", "bg"]), "bg\n");
    same(&d, &["kill", "-s", "FOO", "bg"]);
    assert_eq!(d.berth_ok(&["rm", "-f", "bg"]), "bg\n");
}

/// Needs: attach with stdin=1 (the client's write half shut at EOF closes the container's
/// stdin), OpenStdin/StdinOnce, and exec with AttachStdin.
#[test]
fn stdin_is_piped_through() {
    let d = daemon_with_busybox();
    let mut cmd = d.berth_cmd();
    cmd.args(["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"]);
    let out = with_stdin(cmd, b"line one\nline two\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "line one\nline two\ndone\n");
    let mut cmd = d.docker_cmd();
    cmd.args(["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"]);
    let docker = with_stdin(cmd, b"line one\nline two\n");
    assert_eq!(text(&docker.stdout), text(&out.stdout));
    d.berth_ok(&["run", "-d", "--name", "cat", "busybox", "sleep", "1000"]);
    let mut cmd = d.berth_cmd();
    cmd.args(["exec", "-i", "cat", "wc", "-l"]);
    let out = with_stdin(cmd, b"a\nb\nc\n");
    assert_eq!(text(&out.stdout).trim(), "3", "{}", text(&out.stderr));
    d.berth_ok(&["rm", "-f", "cat"]);
}

/// Needs: HEAD /containers/{id}/archive (X-Docker-Container-Path-Stat), GET archive (a tar
/// of the path), PUT archive?path=DIR&noOverwriteDirNonDir=true, /containers/{id}/changes.
#[test]
fn cp_both_ways() {
    let d = daemon_with_busybox();
    d.berth_ok(&["run", "-d", "--name", "files", "busybox", "sleep", "1000"]);
    let dir = d.dir.path();
    std::fs::write(dir.join("in.txt"), "to the container\n").unwrap();
    d.berth_ok(&["cp", dir.join("in.txt").to_str().unwrap(), "files:/tmp/"]);
    let out = d.berth_ok(&["exec", "files", "cat", "/tmp/in.txt"]);
    assert_eq!(out, "to the container\n");
    // Into a new name, then back out under another.
    d.berth_ok(&[
        "cp",
        dir.join("in.txt").to_str().unwrap(),
        "files:/tmp/renamed.txt",
    ]);
    d.berth_ok(&[
        "cp",
        "files:/tmp/renamed.txt",
        dir.join("out.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        "to the container\n"
    );
    // A directory out: /etc becomes DEST.
    d.berth_ok(&["cp", "files:/etc", dir.join("etc-copy").to_str().unwrap()]);
    assert!(dir.join("etc-copy/passwd").is_file());
    // `-`: a tar on stdout, and from stdin.
    let tar = d.berth(&["cp", "files:/tmp/in.txt", "-"]);
    assert!(tar.status.success());
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar.stdout[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert_eq!(names, vec!["in.txt".to_string()]);
    let mut cmd = d.berth_cmd();
    cmd.args(["cp", "-", "files:/root"]);
    let out = with_stdin(cmd, &tar.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        d.berth_ok(&["exec", "files", "cat", "/root/in.txt"]),
        "to the container\n"
    );
    same(&d, &["diff", "files"]);
    same(&d, &["cp", "files:/nope", dir.join("x").to_str().unwrap()]);
    same(&d, &["cp", "-", "files:/tmp/in.txt"]);
    same(&d, &["cp", "files:/a", "files:/b"]);
    d.berth_ok(&["rm", "-f", "files"]);
}

/// Needs: POST /containers/{id}/rename?name=, its 409 conflict message, POST
/// /containers/{id}/wait (default condition) answering {"StatusCode": n}, create's name
/// conflict, commit and export.
#[test]
fn rename_wait_commit_export() {
    let d = daemon_with_busybox();
    let id = d.berth_ok(&["create", "--name", "first", "busybox", "sh", "-c", "exit 4"]);
    assert_eq!(id.trim().len(), 64);
    d.berth_ok(&["create", "--name", "second", "busybox", "true"]);
    same(&d, &["rename", "first", "second"]);
    same(&d, &["rename", "nosuch", "x"]);
    d.berth_ok(&["rename", "first", "renamed"]);
    same(&d, &["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert_eq!(d.berth_ok(&["start", "renamed"]), "renamed\n");
    assert_eq!(d.berth_ok(&["wait", "renamed"]), "4\n");
    same(&d, &["wait", "renamed"]);
    same(&d, &["wait", "nosuch"]);
    let out = d.berth(&["create", "--name", "second", "busybox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("Error response from daemon: "),
        "{}",
        text(&out.stderr)
    );
    let image = d.berth_ok(&["commit", "-m", "msg", "renamed", "committed:1"]);
    assert!(image.starts_with("sha256:"), "{image}");
    let comment = d.berth_ok(&["image", "inspect", "-f", "{{.Comment}}", "committed:1"]);
    assert_eq!(comment, "msg\n");
    let tarfile = d.dir.path().join("export.tar");
    d.berth_ok(&["export", "-o", tarfile.to_str().unwrap(), "renamed"]);
    let data = std::fs::read(&tarfile).unwrap();
    let has_busybox = tar::Archive::new(&data[..]).entries().unwrap().any(|e| {
        e.unwrap()
            .path()
            .unwrap()
            .to_string_lossy()
            .contains("bin/busybox")
    });
    assert!(has_busybox);
    same(&d, &["container", "prune", "-f"]);
}
