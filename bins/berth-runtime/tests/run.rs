//! End-to-end tests of the `berth-runtime` binary on this host: a busybox-static
//! bundle, `run` in the foreground, the create/start/state/kill/delete lifecycle, and
//! Docker's default capabilities and seccomp profile seen from inside the container.
//! They need root; without it they say so and pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");
const BUSYBOX: &str = "/bin/busybox";
/// Docker's default capability set as `/proc/<pid>/status` prints it.
const DOCKER_CAP_EFF: &str = "00000000a80425fb";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"))
}

/// Returns false, after saying why, when the host cannot run these tests.
fn can_run(test: &str) -> bool {
    if !is_root() {
        eprintln!("skipping {test}: berth-runtime needs root to create containers");
        return false;
    }
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipping {test}: {BUSYBOX} (Debian's busybox-static) is missing");
        return false;
    }
    true
}

/// A bundle, a state root and a container ID; dropping it deletes the container,
/// its cgroups and the directories.
struct Fixture {
    dir: tempfile::TempDir,
    id: String,
    cgroups_path: String,
}

impl Fixture {
    fn new(name: &str, args: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let id = format!("brt-{}-{name}", std::process::id());
        let fixture = Fixture {
            cgroups_path: format!("/berth-runtime-test-{id}"),
            id,
            dir,
        };
        let bin = fixture.rootfs().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        let applets = Command::new(BUSYBOX).arg("--list").output().unwrap();
        for applet in String::from_utf8(applets.stdout).unwrap().lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
            }
        }
        let spec = fixture.runtime(&["spec", "--bundle"], &[fixture.bundle()]);
        assert!(spec.status.success(), "spec: {}", stderr(&spec));
        let config_path = fixture.bundle().join("config.json");
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        config["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        config["linux"]["cgroupsPath"] = Value::from(fixture.cgroups_path.clone());
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        fixture
    }

    fn bundle(&self) -> &Path {
        self.dir.path()
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs `berth-runtime --root <state> <args> <paths>` with stdin closed.
    fn runtime(&self, args: &[&str], paths: &[&Path]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(self.state_root())
            .args(args)
            .args(paths)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.runtime(args, &[]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn state(&self) -> Value {
        serde_json::from_str(&self.ok(&["state", &self.id])).unwrap()
    }

    /// The container's cgroup directories that still exist.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else {
            return Vec::new();
        };
        let rel = self.cgroups_path.trim_start_matches('/');
        controllers
            .filter_map(|c| Some(c.ok()?.path().join(rel)))
            .filter(|p| p.exists())
            .collect()
    }

    /// Mount points under the bundle still in this mount namespace.
    fn mounts(&self) -> Vec<String> {
        let bundle = self.bundle().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&bundle))
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.state_root().join(&self.id).exists() {
            let _ = self.runtime(&["delete", "--force", &self.id], &[]);
        }
        for dir in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Makes this test process the reaper of orphaned descendants, so that a container
/// whose `create` process has exited is reaped here, not left a zombie.
fn become_subreaper() {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    assert_eq!(rc, 0, "prctl: {}", std::io::Error::last_os_error());
}

/// Reaps `pid` (our orphaned descendant) if it has exited; true once it is gone.
fn reap(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: `status` is a valid place for the wait status; WNOHANG never blocks.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    rc == pid || !Path::new(&format!("/proc/{pid}")).exists()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_prints_and_returns_the_exit_code() {
    if !can_run("run_prints_and_returns_the_exit_code") {
        return;
    }
    let fx = Fixture::new("run", &["sh", "-c", "echo hello; exit 3"]);
    let out = fx.runtime(&["run", "--bundle"], &[fx.bundle(), Path::new(&fx.id)]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n",
        "{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(!fx.state_root().join(&fx.id).exists(), "state left behind");
    assert_eq!(fx.cgroup_dirs(), Vec::<PathBuf>::new());
    assert_eq!(fx.mounts(), Vec::<String>::new());
}

#[test]
fn lifecycle_create_start_state_kill_delete() {
    if !can_run("lifecycle_create_start_state_kill_delete") {
        return;
    }
    become_subreaper();
    let fx = Fixture::new("life", &["sleep", "100"]);
    // The container keeps the stdio it is given: not our pipes, or `output` would wait
    // for it.
    let status = Command::new(BIN)
        .arg("--root")
        .arg(fx.state_root())
        .args(["create", "--bundle"])
        .arg(fx.bundle())
        .arg(&fx.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "create failed");

    let created = fx.state();
    assert_eq!(created["status"], "created", "{created}");
    assert_eq!(created["id"], fx.id.as_str());
    let pid = created["pid"].as_i64().unwrap() as i32;
    assert!(pid > 0);
    assert!(
        !fx.cgroup_dirs().is_empty(),
        "no cgroup at {}",
        fx.cgroups_path
    );
    let listed = fx.ok(&["list", "-q"]);
    assert_eq!(listed.trim(), fx.id);

    fx.ok(&["start", &fx.id]);
    let running = fx.state();
    assert_eq!(running["status"], "running", "{running}");
    assert_eq!(running["pid"].as_i64(), Some(i64::from(pid)));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"sleep\x00100\x00");

    fx.ok(&["kill", &fx.id, "KILL"]);
    wait_for("the container to exit", || reap(pid));
    assert_eq!(fx.state()["status"], "stopped");

    fx.ok(&["delete", &fx.id]);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(!fx.state_root().join(&fx.id).exists(), "state left behind");
    assert_eq!(fx.cgroup_dirs(), Vec::<PathBuf>::new());
    assert_eq!(fx.mounts(), Vec::<String>::new());
    let gone = fx.runtime(&["state", &fx.id], &[]);
    assert!(!gone.status.success());
}

#[test]
fn docker_default_capabilities_and_seccomp_apply() {
    if !can_run("docker_default_capabilities_and_seccomp_apply") {
        return;
    }
    let script = "grep CapEff /proc/self/status; \
                  if unshare -U true; then echo unshare allowed; else echo unshare denied; fi";
    let fx = Fixture::new("sec", &["sh", "-c", script]);
    let out = fx.runtime(&["run", "--bundle"], &[fx.bundle(), Path::new(&fx.id)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", stderr(&out));
    assert!(
        stdout.contains(&format!("CapEff:\t{DOCKER_CAP_EFF}\n")),
        "{stdout}"
    );
    assert!(stdout.contains("unshare denied\n"), "{stdout}");
}

#[test]
fn exec_and_ps_reach_a_running_container() {
    if !can_run("exec_and_ps_reach_a_running_container") {
        return;
    }
    become_subreaper();
    let fx = Fixture::new("exec", &["sleep", "100"]);
    let status = Command::new(BIN)
        .arg("--root")
        .arg(fx.state_root())
        .args(["run", "--detach", "--bundle"])
        .arg(fx.bundle())
        .arg(&fx.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let pid = fx.state()["pid"].as_i64().unwrap() as i32;
    // exec: the command's output and exit status, in the container's namespaces.
    let out = fx.runtime(
        &[
            "exec",
            "--env",
            "X=from-exec",
            &fx.id,
            "sh",
            "-c",
            "echo $X; readlink /proc/1/exe; exit 6",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from-exec\n/bin/busybox\n"
    );
    // ps: the init is the only process.
    let pids: Vec<i32> = serde_json::from_str(&fx.ok(&["ps", "--format", "json", &fx.id])).unwrap();
    assert_eq!(pids, vec![pid]);
    let table = fx.ok(&["ps", &fx.id]);
    assert!(
        table.starts_with("UID") && table.contains("sleep 100"),
        "{table}"
    );
    fx.ok(&["kill", &fx.id, "KILL"]);
    wait_for("the container to exit", || reap(pid));
    fx.ok(&["delete", &fx.id]);
}

/// The launcher's own root filesystem: missing destinations are made inside the root,
/// a destination symlink resolves inside it, read-only binds, device nodes with their
/// mode and owner, nothing but lxcfs' files mounted under /proc, and a mount option
/// only libcontainer implements (`rro`) still works through libcontainer's builder.
#[test]
fn root_filesystem_mounts_devices_and_refusals() {
    if !can_run("root_filesystem_mounts_devices_and_refusals") {
        return;
    }
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("marker"), "from the host\n").unwrap();
    let host_escape = format!("/tmp/brt-escape-{}", std::process::id());
    let script = format!(
        "cat /a/b/c/marker; touch /a/b/c/x 2>/dev/null; echo write=$?; \
         cat {host_escape}/marker; \
         stat -c '%a %u %g %t %T %F' /dev/sub/node; \
         readlink /dev/ptmx"
    );
    let fx = Fixture::new("rootfs", &["sh", "-c", &script]);
    std::os::unix::fs::symlink(
        format!("../../../../..{host_escape}"),
        fx.rootfs().join("link"),
    )
    .unwrap();
    let config_path = fx.bundle().join("config.json");
    let edit = |change: &dyn Fn(&mut Value)| {
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        change(&mut config);
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    };
    let source = shared.path().to_str().unwrap().to_string();
    edit(&|config| {
        let mounts = config["mounts"].as_array_mut().unwrap();
        for dest in ["/a/b/c", "/link"] {
            mounts.push(serde_json::json!({
                "destination": dest, "type": "bind", "source": source,
                "options": ["rbind", "ro", "rprivate"],
            }));
        }
        config["linux"]["devices"] = serde_json::json!([{
            "path": "/dev/sub/node", "type": "c", "major": 1, "minor": 3,
            "fileMode": 0o600, "uid": 1, "gid": 2,
        }]);
    });
    let out = fx.runtime(&["run", "--bundle"], &[fx.bundle(), Path::new(&fx.id)]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from the host\nwrite=1\nfrom the host\n600 1 2 1 3 character special file\npts/ptmx\n",
        "{}",
        stderr(&out)
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !Path::new(&host_escape).exists(),
        "the symlinked destination reached the host's {host_escape}"
    );
    assert!(
        fx.rootfs().join(&host_escape[1..]).is_dir(),
        "made inside the root"
    );
    assert_eq!(fx.mounts(), Vec::<String>::new());

    // Under /proc only the files lxcfs emulates may be covered.
    edit(&|config| {
        config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "destination": "/proc/sys", "type": "bind", "source": source,
                "options": ["rbind"],
            }));
    });
    let out = fx.runtime(&["run", "--bundle"], &[fx.bundle(), Path::new(&fx.id)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/proc/sys cannot be mounted because it is inside /proc"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fx.cgroup_dirs(), Vec::<PathBuf>::new());
    assert_eq!(fx.mounts(), Vec::<String>::new());

    // A recursive attribute: libcontainer's builder takes the spec, and it still runs.
    edit(&|config| {
        let mounts = config["mounts"].as_array_mut().unwrap();
        mounts.pop();
        mounts.push(serde_json::json!({
            "destination": "/r", "type": "bind", "source": source,
            "options": ["rbind", "rro"],
        }));
        config["process"]["args"] = serde_json::json!(["cat", "/r/marker"]);
    });
    let out = fx.runtime(&["run", "--bundle"], &[fx.bundle(), Path::new(&fx.id)]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from the host\n",
        "{}",
        stderr(&out)
    );

    // Never in the host's mount namespace.
    edit(&|config| {
        let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "mount");
    });
    let out = fx.runtime(&["run", "--bundle"], &[fx.bundle(), Path::new(&fx.id)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the container needs a mount namespace"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fx.mounts(), Vec::<String>::new());
}
