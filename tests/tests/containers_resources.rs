//! Resource limits end to end with the real docker CLI: the cgroup files berthd's
//! containers get from `run -m/--cpus/--pids-limit`, `docker stats`, `docker update`,
//! `docker top`, the OOM killer and a fork bomb held by its pids limit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_tests::{Daemon, tail};

fn daemon_with_busybox() -> Daemon {
    Daemon::with_busybox()
}

/// Removes the containers (`docker rm -f`) when the test ends, passed or not: their
/// shims outlive the daemon.
struct Cleanup<'a> {
    d: &'a Daemon,
    ids: Vec<String>,
}

impl<'a> Cleanup<'a> {
    fn new(d: &'a Daemon) -> Cleanup<'a> {
        Cleanup { d, ids: Vec::new() }
    }

    fn add(&mut self, id: &str) -> String {
        self.ids.push(id.trim().to_string());
        id.trim().to_string()
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.d.docker(&["rm", "-f", id]);
        }
    }
}

const CGROUPFS: &str = "/sys/fs/cgroup";

fn cgroup_v2() -> bool {
    Path::new(CGROUPFS).join("cgroup.controllers").exists()
}

/// A file of the container's cgroup: the v1 controller's copy or the unified one.
fn cgroup_path(id: &str, controller: &str, v1: &str, v2: &str) -> PathBuf {
    if cgroup_v2() {
        Path::new(CGROUPFS).join("berth").join(id).join(v2)
    } else {
        Path::new(CGROUPFS)
            .join(controller)
            .join("berth")
            .join(id)
            .join(v1)
    }
}

fn cgroup_read(id: &str, controller: &str, v1: &str, v2: &str) -> String {
    let path = cgroup_path(id, controller, v1, v2);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

fn memory_limit(id: &str) -> String {
    cgroup_read(id, "memory", "memory.limit_in_bytes", "memory.max")
}

fn pids_max(id: &str) -> String {
    cgroup_read(id, "pids", "pids.max", "pids.max")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn limits_stats_update_and_top() {
    let d = daemon_with_busybox();
    let mut cleanup = Cleanup::new(&d);
    let id = cleanup.add(&d.docker_ok(&[
        "run",
        "-d",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "busybox",
        "sleep",
        "30",
    ]));
    let short = &id[..12];

    // The limits are in the cgroup.
    assert_eq!(memory_limit(&id), "67108864");
    assert_eq!(pids_max(&id), "50");
    if cgroup_v2() {
        assert_eq!(cgroup_read(&id, "cpu", "", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(cgroup_read(&id, "cpu", "cpu.cfs_quota_us", ""), "50000");
        assert_eq!(cgroup_read(&id, "cpu", "cpu.cfs_period_us", ""), "100000");
        assert_eq!(
            cgroup_read(&id, "memory", "memory.memsw.limit_in_bytes", ""),
            "134217728"
        );
    }

    // docker stats: the container with its 64 MiB limit and its one process.
    let out = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.ID}}|{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}",
        &id,
    ]);
    let fields: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(fields.len(), 5, "{out}");
    assert_eq!(fields[0], short);
    assert!(fields[2].ends_with("/ 64MiB"), "{out}");
    assert_eq!(fields[3], "1", "{out}");
    assert!(fields[4].ends_with('%'), "{out}");
    let table = d.docker_ok(&["stats", "--no-stream"]);
    assert!(table.contains(short), "{table}");
    assert!(table.contains("64MiB"), "{table}");

    // The raw object, one-shot: dockerd's fields, no previous sample.
    let (status, headers, body) = d.request(
        "GET",
        &format!("/containers/{id}/stats?stream=false&one-shot=true"),
        None,
    );
    assert_eq!(status, 200, "{}", text(&body));
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/json")
    );
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["id"], id.as_str());
    assert!(stats["name"].as_str().unwrap().starts_with('/'));
    assert_eq!(stats["memory_stats"]["limit"], 67_108_864);
    assert!(stats["memory_stats"]["usage"].as_u64().unwrap() > 0);
    assert_eq!(stats["pids_stats"]["current"], 1);
    assert_eq!(stats["pids_stats"]["limit"], 50);
    assert_eq!(stats["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(stats["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    assert!(stats["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(stats["cpu_stats"]["online_cpus"].as_u64().unwrap() > 0);
    assert!(stats.get("networks").is_none());
    let (status, _, body) = d.request(
        "GET",
        &format!("/containers/{id}/stats?stream=true&one-shot=true"),
        None,
    );
    assert_eq!(status, 400, "{}", text(&body));

    // docker update changes the record and the cgroup.
    d.docker_ok(&["update", "-m", "128m", "--pids-limit", "30", &id]);
    assert_eq!(memory_limit(&id), "134217728");
    assert_eq!(pids_max(&id), "30");
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
            &id
        ])
        .trim(),
        "134217728 30"
    );
    d.docker_ok(&["update", "--cpus", "1.5", &id]);
    if cgroup_v2() {
        assert_eq!(cgroup_read(&id, "cpu", "", "cpu.max"), "150000 100000");
    } else {
        assert_eq!(cgroup_read(&id, "cpu", "cpu.cfs_quota_us", ""), "150000");
    }
    let out = d.docker(&["update", "-m", "1m", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Minimum memory limit allowed is 6MB"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["update", "-m", "64m", "--memory-swap", "32m", &id]);
    assert!(
        text(&out.stderr).contains("Minimum memoryswap limit should be larger than memory limit"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["update", "-m", "512m", &id]);
    assert!(
        text(&out.stderr).contains(
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(memory_limit(&id), "134217728");

    // docker top: the sleep, with the default and custom ps arguments.
    let top = d.docker_ok(&["top", &id]);
    let mut lines = top.lines();
    let titles = lines.next().unwrap();
    assert!(titles.contains("PID") && titles.contains("CMD"), "{top}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{top}");
    assert!(rows[0].contains("sleep 30"), "{top}");
    let top = d.docker_ok(&["top", &id, "-o", "pid,comm"]);
    assert!(top.lines().nth(1).unwrap().ends_with("sleep"), "{top}");
    let out = d.docker(&["top", &id, "-o", "user=PID"]);
    assert!(
        text(&out.stderr).contains("specifying \"user=PID\" is not allowed"),
        "{}",
        text(&out.stderr)
    );

    // Stopped: top refuses, stats are zeros.
    d.docker_ok(&["kill", &id]);
    d.docker_ok(&["wait", &id]);
    let out = d.docker(&["top", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("container {id} is not running")),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}|{{.PIDs}}",
        &id,
    ]);
    assert_eq!(out.trim(), "0B / 0B|0", "{out}");
    let (_, _, body) = d.request("GET", &format!("/containers/{id}/stats?stream=false"), None);
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["read"], "0001-01-01T00:00:00Z");
    assert_eq!(stats["memory_stats"], serde_json::json!({}));

    // Updating a stopped container keeps the values for its next start.
    d.docker_ok(&["update", "-m", "100m", &id]);
    d.docker_ok(&["start", &id]);
    assert_eq!(memory_limit(&id), "104857600");
}

#[test]
fn stats_stream_until_the_container_stops() {
    let d = daemon_with_busybox();
    let mut cleanup = Cleanup::new(&d);
    let id = cleanup.add(&d.docker_ok(&["run", "-d", "busybox", "sleep", "3"]));
    let started = Instant::now();
    let (status, _, body) = d.request("GET", &format!("/containers/{id}/stats"), None);
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(30));
    let lines: Vec<serde_json::Value> = text(&body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 2, "{}", text(&body));
    // The first has no previous sample; the next ones carry the one before.
    assert_eq!(lines[0]["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(lines[1]["preread"], lines[0]["read"]);
    assert_eq!(
        lines[1]["precpu_stats"]["cpu_usage"],
        lines[0]["cpu_stats"]["cpu_usage"]
    );
    // The last: the container stopped.
    let last = lines.last().unwrap();
    assert_eq!(last["read"], "0001-01-01T00:00:00Z");
    assert_eq!(last["id"], id.as_str());
}

#[test]
fn oom_killed_containers_exit_137() {
    let d = daemon_with_busybox();
    let mut cleanup = Cleanup::new(&d);
    cleanup.add("oom");
    let out = d.docker(&[
        "run",
        "--name",
        "oom",
        "-m",
        "16m",
        "busybox",
        "sh",
        "-c",
        "x=a; while true; do x=$x$x; done",
    ]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}\n{}",
        text(&out.stderr),
        tail(&d.log(), 30)
    );
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            "oom"
        ])
        .trim(),
        "true 137"
    );
}

#[test]
fn a_fork_bomb_is_held_by_the_pids_limit() {
    let d = daemon_with_busybox();
    let mut cleanup = Cleanup::new(&d);
    let id = cleanup.add(&d.docker_ok(&[
        "run",
        "-d",
        "--pids-limit",
        "20",
        "busybox",
        "sh",
        "-c",
        "sh -c 'while true; do sleep 100 & done'; echo survived; sleep 100",
    ]));
    assert_eq!(pids_max(&id), "20");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut logs = String::new();
    while Instant::now() < deadline {
        let current: u64 = cgroup_read(&id, "pids", "pids.current", "pids.current")
            .parse()
            .unwrap();
        assert!(current <= 20, "pids.current {current} > 20");
        let out = d.docker(&["logs", &id]);
        logs = text(&out.stdout) + &text(&out.stderr);
        if logs.contains("survived") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(logs.contains("survived"), "{logs}");
    assert!(logs.contains("can't fork"), "{logs}");
    // Forks failed; the container lives on, at its limit.
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Running}}", &id])
            .trim(),
        "true"
    );
    let current: u64 = cgroup_read(&id, "pids", "pids.current", "pids.current")
        .parse()
        .unwrap();
    assert!((15..=20).contains(&current), "pids.current {current}");
    let pids = d.docker_ok(&["stats", "--no-stream", "--format", "{{.PIDs}}", &id]);
    let pids: u64 = pids.trim().parse().unwrap();
    assert!(pids <= 20, "{pids}");
    let top = d.docker_ok(&["top", &id]);
    assert!(top.lines().count() > 10, "{top}");
}
