//! Containers through the real docker CLI against berthd: Docker's isolation defaults
//! seen from inside, the lifecycle with a leak check after it, restart policies, mounts
//! and volumes, networks none/host, and a daemon crash with containers running.

use std::time::{Duration, Instant};

use berth_tests::{Daemon, wait_for};

fn daemon_with_busybox() -> Daemon {
    Daemon::with_busybox()
}

fn run(d: &Daemon, args: &[&str]) -> (Option<i32>, String, String) {
    let out = d.docker(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn inspect(d: &Daemon, id: &str, format: &str) -> String {
    d.docker_ok(&["inspect", "-f", format, id])
        .trim()
        .to_string()
}

/// On cgroup v1 each hierarchy shows the container's own cgroup, systemd's named one
/// included (Docker's runc joins it too), never the host's tree around it.
#[test]
fn cgroup_hierarchies_show_only_the_containers_own_cgroup() {
    let cgroup_v1 = std::path::Path::new("/sys/fs/cgroup/memory").is_dir();
    if !cgroup_v1 {
        eprintln!(
            "skipped: cgroup v2 host (a new cgroup2 mount in the container's cgroup namespace)"
        );
        return;
    }
    let d = daemon_with_busybox();
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
        ls /sys/fs/cgroup/; \
        find /sys/fs/cgroup/systemd/ /sys/fs/cgroup/memory/ -mindepth 1 -type d | wc -l; \
        grep -qx 1 /sys/fs/cgroup/systemd/cgroup.procs && echo pid1-here";
    // Docker's v1 default binds the host's directories; with a cgroup namespace each
    // hierarchy is mounted anew, rooted at the container's cgroup.
    for cgroupns in ["host", "private"] {
        let args = [
            "run",
            "--rm",
            "--cgroupns",
            cgroupns,
            "-m",
            "64m",
            "busybox",
            "sh",
            "-c",
            script,
        ];
        let (code, out, err) = run(&d, &args);
        assert_eq!(code, Some(0), "{cgroupns}: {err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.first(), Some(&"67108864"), "{cgroupns}: {out}");
        for hierarchy in ["cpu", "memory", "pids", "systemd"] {
            assert!(
                lines.contains(&hierarchy),
                "{cgroupns}: no {hierarchy}: {out}"
            );
        }
        let n = lines.len();
        assert_eq!(
            lines[n - 2],
            "0",
            "{cgroupns}: no cgroups below its own: {out}"
        );
        assert_eq!(
            lines[n - 1],
            "pid1-here",
            "{cgroupns}: its init is in it: {out}"
        );
    }
}

/// A mount destination that is a symlink in the image resolves inside the container's
/// root, however many `..` it has: nothing is mounted on the host's path.
#[test]
fn mount_destinations_resolve_inside_the_root() {
    let d = daemon_with_busybox();
    let escape = format!("/tmp/berth-escape-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&escape);
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("marker"), "bound\n").unwrap();
    let link = format!("ln -s ../../../../../..{escape} /evil && mkdir -p {escape}");
    d.docker_ok(&["run", "--name", "linker", "busybox", "sh", "-c", &link]);
    d.docker_ok(&["commit", "linker", "linked:1"]);
    let volume = format!("{}:/evil", source.path().display());
    let script = format!("cat {escape}/marker; readlink /evil");
    let (code, out, err) = run(
        &d,
        &[
            "run", "--rm", "-v", &volume, "linked:1", "sh", "-c", &script,
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("bound\n"),
        "the bind lands on the link's target inside: {out}"
    );
    assert!(
        !std::path::Path::new(&escape).exists(),
        "{escape} appeared on the host"
    );
    d.docker_ok(&["rm", "linker"]);
    d.assert_no_leaks(&[]);
}

#[test]
fn docker_security_defaults_hold_inside() {
    let d = daemon_with_busybox();
    let script = "grep CapEff /proc/self/status; \
        unshare -m true 2>/dev/null; echo unshare=$?; \
        mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?; \
        keyctl 2>/dev/null; \
        touch /sys/x 2>/dev/null; echo sys=$?; \
        echo 1 > /proc/sysrq-trigger 2>/dev/null; echo sysrq=$?; \
        test -s /proc/kcore; echo kcore=$?; \
        grep -c ' /proc/acpi ' /proc/self/mountinfo; \
        for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max; do \
          test -e $f && { echo max > $f 2>/dev/null; echo cgroupfs=$?; }; done; \
        echo links $(readlink /dev/ptmx) $(readlink /dev/fd) $(readlink /dev/stdin); \
        test -c /dev/null && test -c /dev/urandom && test -c /dev/tty && echo devices=ok; \
        cat /proc/1/cmdline | tr '\\0' ' '; echo";
    let (code, out, err) = run(&d, &["run", "--rm", "busybox", "sh", "-c", script]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(
        out.contains("unshare=1"),
        "seccomp must refuse unshare: {out}"
    );
    assert!(out.contains("mount=1"), "mount must be refused: {out}");
    assert!(out.contains("sys=1"), "/sys must be read-only: {out}");
    assert!(
        out.contains("sysrq=1"),
        "/proc/sysrq-trigger must be read-only: {out}"
    );
    assert!(
        out.contains("kcore=1"),
        "/proc/kcore must be empty or masked: {out}"
    );
    assert!(
        out.contains("sh -c grep CapEff"),
        "PID 1 is the command: {out}"
    );
    assert!(
        out.contains("cgroupfs=1"),
        "the cgroup filesystem must be read-only, or the container raises its own limits: {out}"
    );
    assert!(
        out.contains("links pts/ptmx /proc/self/fd /proc/self/fd/0"),
        "{out}"
    );
    assert!(out.contains("devices=ok"), "{out}");

    // keyctl(2) is refused by the profile: busybox has no keyctl applet, so use the
    // privileged comparison instead: --privileged gets every capability.
    let (_, out, _) = run(
        &d,
        &[
            "run",
            "--rm",
            "--privileged",
            "busybox",
            "grep",
            "CapEff",
            "/proc/self/status",
        ],
    );
    // Every capability the daemon itself holds.
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = ours
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        out.contains(&format!("CapEff:\t{bounding}")),
        "{out} vs {bounding}"
    );
    let (_, out, _) = run(
        &d,
        &[
            "run",
            "--rm",
            "--cap-drop",
            "ALL",
            "busybox",
            "grep",
            "CapEff",
            "/proc/self/status",
        ],
    );
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    let (_, out, _) = run(
        &d,
        &[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            "--cap-add",
            "SYS_ADMIN",
            "busybox",
            "sh",
            "-c",
            "unshare -m true; echo $?",
        ],
    );
    assert_eq!(out.trim(), "0");
}

#[test]
fn lifecycle_leaves_nothing_behind() {
    let d = daemon_with_busybox();
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "echo ready; trap '' TERM; sleep 300",
        ])
        .trim()
        .to_string();
    wait_for("log line", || d.docker_ok(&["logs", "web"]) == "ready\n");
    assert_eq!(
        inspect(&d, "web", "{{.State.Status}} {{.State.Running}}"),
        "running true"
    );
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Up "), "{ps}");
    assert_eq!(
        d.docker_ok(&["exec", "web", "cat", "/etc/hostname"]).trim(),
        &id[..12]
    );
    // HOME as runc sets it: from the image's passwd for the process's user, unless given.
    let home = "echo $HOME";
    assert_eq!(d.docker_ok(&["exec", "web", "sh", "-c", home]), "/root\n");
    assert_eq!(
        d.docker_ok(&["exec", "-u", "nobody", "web", "sh", "-c", home]),
        "/nonexistent\n"
    );
    assert_eq!(
        d.docker_ok(&["exec", "-e", "HOME=/h", "web", "sh", "-c", home]),
        "/h\n"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-u", "nobody", "busybox", "sh", "-c", home]),
        "/nonexistent\n"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-u", "4242", "busybox", "sh", "-c", home]),
        "/\n"
    );
    // A name in use, a missing image, a bad command.
    let (code, _, err) = run(&d, &["run", "--name", "web", "busybox", "true"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("is already in use by container"), "{err}");
    let (code, _, err) = run(
        &d,
        &["run", "--rm", "--pull", "never", "nosuchimage", "true"],
    );
    assert_eq!(code, Some(125));
    assert!(err.contains("No such image: nosuchimage:latest"), "{err}");
    let (code, _, _) = run(&d, &["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(code, Some(127));
    // pause / unpause
    d.docker_ok(&["pause", "web"]);
    assert_eq!(inspect(&d, "web", "{{.State.Status}}"), "paused");
    d.docker_ok(&["unpause", "web"]);
    // The shell ignores SIGTERM: stop must SIGKILL it after the timeout.
    let started = Instant::now();
    d.docker_ok(&["stop", "-t", "1", "web"]);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(inspect(&d, "web", "{{.State.ExitCode}}"), "137");
    d.docker_ok(&["rm", "web"]);
    // --rm, exit codes, stdin.
    for code in [0, 3, 42, 255] {
        let (got, _, _) = run(
            &d,
            &[
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                &format!("exit {code}"),
            ],
        );
        assert_eq!(got, Some(code));
    }
    let out = d
        .docker_cmd()
        .args(["run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"piped\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED\n");
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
    // The container's events, in order.
    let until = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1
    );
    let events = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = events.lines().filter(|a| !a.starts_with("exec_")).collect();
    for expected in [
        "create", "start", "pause", "unpause", "kill", "die", "stop", "destroy",
    ] {
        assert!(actions.contains(&expected), "no {expected} in {actions:?}");
    }
    assert_eq!(actions.first(), Some(&"create"));
    assert_eq!(actions.last(), Some(&"destroy"));
    d.assert_no_leaks(&[&id]);
    // A removed container's directory is deleted after the removal answers.
    let dirs = d.data_root().join("containers");
    wait_for("removed containers' directories", || {
        std::fs::read_dir(&dirs).unwrap().next().is_none()
    });
}

#[test]
fn restart_policies_restart_crashed_containers() {
    let d = daemon_with_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    wait_for("two restarts then exited", || {
        inspect(&d, "flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });
    assert_eq!(inspect(&d, "flaky", "{{.State.ExitCode}}"), "3");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2; exit 1",
    ]);
    wait_for("a restart", || {
        inspect(&d, "always", "{{.RestartCount}}") != "0"
    });
    // A manual stop is not undone by the policy.
    d.docker_ok(&["stop", "-t", "1", "always"]);
    let count = inspect(&d, "always", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        inspect(&d, "always", "{{.RestartCount}} {{.State.Status}}"),
        format!("{count} exited")
    );
}

#[test]
fn containers_survive_a_daemon_crash() {
    let mut d = daemon_with_busybox();
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "survivor",
            "busybox",
            "sh",
            "-c",
            "echo one; sleep 300",
        ])
        .trim()
        .to_string();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "quick",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 5",
    ]);
    let pid = inspect(&d, "survivor", "{{.State.Pid}}");
    d.kill();
    // A removed container whose directory was still being deleted (or a create that
    // died before its record): a directory without a record, deleted at start.
    let orphan = d.data_root().join("containers").join("f".repeat(64));
    std::fs::create_dir_all(orphan.join("upper/etc")).unwrap();
    std::fs::write(orphan.join("upper/etc/hosts"), "x").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the container died with the daemon"
    );
    d.restart();
    assert!(
        !orphan.exists(),
        "a directory without a record survived the start"
    );
    assert_eq!(
        inspect(&d, "survivor", "{{.State.Status}} {{.State.Pid}}"),
        format!("running {pid}")
    );
    // The exit that happened while the daemon was down is recorded.
    wait_for("quick's exit", || {
        inspect(&d, "quick", "{{.State.Status}} {{.State.ExitCode}}") == "exited 5"
    });
    assert_eq!(d.docker_ok(&["logs", "survivor"]), "one\n");
    assert_eq!(d.docker_ok(&["exec", "survivor", "echo", "two"]), "two\n");
    let (code, _, _) = run(&d, &["stop", "-t", "1", "survivor"]);
    assert_eq!(code, Some(0));
    // sh as PID 1 has no SIGTERM handler: the stop ends in SIGKILL.
    assert_eq!(d.docker_ok(&["wait", "survivor"]).trim(), "137");
    d.docker_ok(&["rm", "survivor", "quick"]);
    d.assert_no_leaks(&[&id]);
}

#[test]
fn mounts_volumes_and_networks() {
    let d = daemon_with_busybox();
    let host_dir = d.dir.path().join("shared");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("in.txt"), "from host\n").unwrap();
    let bind = format!("{}:/shared", host_dir.display());
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /shared/in.txt; echo out > /shared/out.txt",
    ]);
    assert_eq!(out, "from host\n");
    assert_eq!(
        std::fs::read_to_string(host_dir.join("out.txt")).unwrap(),
        "out\n"
    );
    let ro = format!("{}:/shared:ro", host_dir.display());
    let (code, _, _) = run(
        &d,
        &["run", "--rm", "-v", &ro, "busybox", "touch", "/shared/x"],
    );
    assert_eq!(code, Some(1));
    // A named volume keeps data across containers, and is refused removal in use.
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "-v",
            "data:/data",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "kept\n"
    );
    d.docker_ok(&[
        "create",
        "--name",
        "user",
        "-v",
        "data:/data",
        "busybox",
        "true",
    ]);
    let (code, _, err) = run(&d, &["volume", "rm", "data"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("volume is in use"), "{err}");
    d.docker_ok(&["rm", "user"]);
    d.docker_ok(&["volume", "rm", "data"]);
    // A new named volume is filled from the image's content at its mount point.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox",
        "cat",
        "/etc/passwd",
    ]);
    assert!(out.starts_with("root:"), "{out}");
    // --read-only with a --tmpfs, user, workdir, env, hostname.
    let out = d.docker_ok(&[
        "run", "--rm", "--read-only", "--tmpfs", "/scratch", "-u", "65534:65534", "-w", "/scratch", "-e", "A=b", "-h", "box",
        "busybox", "sh", "-c", "touch f && echo $(id -u):$(id -g) $(pwd) $A $(hostname); touch /nope 2>/dev/null || echo ro",
    ]);
    assert_eq!(out, "65534:65534 /scratch b box\nro\n");
    // --network none has only loopback; host sees the host's interfaces.
    let none = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/proc/net/dev",
    ]);
    assert_eq!(none.lines().count(), 3, "{none}");
    let host = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "cat",
        "/proc/net/dev",
    ]);
    let ours = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert_eq!(host.lines().count(), ours.lines().count());
    d.assert_no_leaks(&[]);
}

#[test]
fn health_logs_namespaces_and_limits() {
    let d = daemon_with_busybox();
    // A health check that passes once a file exists.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "doc",
        "--health-cmd",
        "test -e /tmp/ready",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "sleep 1; touch /tmp/ready; sleep 300",
    ]);
    wait_for("healthy", || {
        inspect(&d, "doc", "{{.State.Health.Status}}") == "healthy"
    });
    let ps = d.docker_ok(&[
        "ps",
        "--filter",
        "health=healthy",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(
        ps.starts_with("doc Up ") && ps.trim_end().ends_with("(healthy)"),
        "{ps}"
    );
    d.docker_ok(&["exec", "doc", "rm", "/tmp/ready"]);
    wait_for("unhealthy", || {
        inspect(&d, "doc", "{{.State.Health.Status}}") == "unhealthy"
    });
    d.docker_ok(&["rm", "-f", "doc"]);

    // json-file rotation and the log options.
    d.docker_ok(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line$i; i=$((i+1)); done",
    ]);
    let logs = d.docker_ok(&["logs", "chatty"]);
    assert!(logs.ends_with("line199\n"), "{logs}");
    assert!(!logs.starts_with("line0\n"), "rotation kept everything");
    let chatty = inspect(&d, "chatty", "{{.Id}}");
    let files = std::fs::read_dir(d.data_root().join("containers").join(chatty))
        .unwrap()
        .flatten()
        .filter(|f| f.file_name().to_string_lossy().contains("-json.log"))
        .count();
    assert_eq!(files, 2, "max-file=2");
    assert_eq!(
        d.docker_ok(&["logs", "--tail", "2", "chatty"]),
        "line198\nline199\n"
    );
    let stamped = d.docker_ok(&["logs", "-t", "--tail", "1", "chatty"]);
    assert!(stamped.contains("Z line199"), "{stamped}");

    // Namespaces shared with the host, ulimits, sysctls.
    let ours = std::process::id().to_string();
    let pids = d.docker_ok(&[
        "run",
        "--rm",
        "--pid",
        "host",
        "busybox",
        "sh",
        "-c",
        &format!("test -d /proc/{ours} && echo seen"),
    ]);
    assert_eq!(pids, "seen\n");
    let (code, _, _) = run(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "test",
            "-d",
            &format!("/proc/{ours}"),
        ],
    );
    assert_eq!(
        code,
        Some(1),
        "a private PID namespace must not see host processes"
    );
    let nofile = d.docker_ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=512:512",
        "busybox",
        "sh",
        "-c",
        "ulimit -n",
    ]);
    assert_eq!(nofile, "512\n");
    let sysctl = d.docker_ok(&[
        "run",
        "--rm",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "busybox",
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
    ]);
    assert_eq!(sysctl, "1\n");
    let uts = d.docker_ok(&["run", "--rm", "--uts", "host", "busybox", "hostname"]);
    assert_eq!(
        uts.trim(),
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim()
    );

    // --volumes-from shares the other container's volumes.
    d.docker_ok(&[
        "create",
        "--name",
        "holder",
        "-v",
        "shared:/shared",
        "busybox",
        "true",
    ]);
    d.docker_ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "holder",
        "busybox",
        "sh",
        "-c",
        "echo via > /shared/f",
    ]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-v", "shared:/s", "busybox", "cat", "/s/f"]),
        "via\n"
    );
    let (code, _, _) = run(
        &d,
        &[
            "run",
            "--rm",
            "--volumes-from",
            "holder:ro",
            "busybox",
            "touch",
            "/shared/g",
        ],
    );
    assert_eq!(code, Some(1));
    d.docker_ok(&["rm", "-f", "holder", "chatty"]);
    d.assert_no_leaks(&[]);
}

/// Runs `docker ARGS` on a pseudo-terminal (through `script`), feeding `input`.
fn on_a_terminal(d: &Daemon, command: &str, input: &[u8]) -> (Option<i32>, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("stty cols 91 rows 23; {command}"),
            "/dev/null",
        ])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stdin.write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn terminals_sizes_and_detach_keys() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: script (util-linux) is missing");
        return;
    }
    let d = daemon_with_busybox();
    // run -it: a terminal of the client's size, input typed at it, the exit status.
    let (code, out) = on_a_terminal(
        &d,
        "docker run -it --rm busybox sh",
        b"stty size; tty; exit 5\r",
    );
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("23 91"), "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    // exec -it into a running container.
    d.docker_ok(&["run", "-dit", "--name", "term", "busybox", "sh"]);
    let (code, out) = on_a_terminal(&d, "docker exec -it term sh -c 'stty size; exit 4'", b"");
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("23 91"), "{out}");
    // attach, then ctrl-p ctrl-q: the client leaves, the container keeps running.
    let (code, out) = on_a_terminal(&d, "docker attach term", b"\x10\x11");
    assert!(out.contains("read escape sequence"), "{code:?} {out}");
    assert_eq!(inspect(&d, "term", "{{.State.Running}}"), "true");
    d.docker_ok(&["rm", "-f", "term"]);
    d.assert_no_leaks(&[]);
}

#[test]
fn images_in_use_are_not_deleted() {
    let d = daemon_with_busybox();
    let image = d
        .docker_ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"])
        .trim()
        .to_string();
    let short = &image["sha256:".len().."sha256:".len() + 12];
    d.docker_ok(&["create", "--name", "user", "busybox", "true"]);
    let (code, _, err) = run(&d, &["rmi", "busybox"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("(must force) - container")
            && err.contains(&format!("is using its referenced image {short}")),
        "{err}"
    );
    let (code, _, err) = run(&d, &["rmi", short]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("image is being used by stopped container"),
        "{err}"
    );
    d.docker_ok(&["image", "prune", "-a", "-f"]);
    // Forced: the tag goes, the image stays for its container.
    d.docker_ok(&["rmi", "-f", "busybox"]);
    assert_eq!(d.docker_ok(&["start", "-a", "user"]), "");
    assert_eq!(inspect(&d, "user", "{{.State.ExitCode}}"), "0");
    d.docker_ok(&["rm", "user"]);
    d.docker_ok(&["rmi", short]);
}
