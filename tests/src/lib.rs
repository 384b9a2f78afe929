//! Fixtures for the end-to-end tests: a berthd on a temporary socket and data root, the
//! real `docker` CLI pointed at it, raw HTTP over the socket, and test images built here.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use berth_distribution::testutil;

/// A built binary of this workspace (`target/<profile>/NAME`), next to the test executable's directory.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// The docker CLI to test with: the one on PATH (28.x on our machines).
pub fn docker_cli() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("docker");
        if p.is_file() {
            return p;
        }
    }
    panic!("the docker CLI is not installed: run scripts/install-deps.sh");
}

/// A berthd serving on a private socket with a private data root; killed (by PID) on drop.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    extra_args: Vec<String>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("docker-config")).unwrap();
        let mut d = Daemon {
            dir,
            child: None,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
        };
        d.spawn();
        d
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .unwrap();
        let child = Command::new(bin("berthd"))
            .arg("-H")
            .arg(self.host())
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.dir.path().join("run"))
            .arg("--config-file")
            .arg("/dev/null")
            .args(&self.extra_args)
            .env(
                "BERTH_LOG",
                "debug,h2=warn,hyper=warn,reqwest=warn,rustls=warn",
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _, _)) = self.try_request("GET", "/_ping", None) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("berthd exited with {status}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("berthd did not answer /_ping: {}", self.log());
    }

    /// Kills the daemon with SIGKILL (a crash) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again on the same socket and data root.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// SIGTERM, then SIGKILL after a few seconds.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on the PID of a child we spawned and have not reaped yet.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// A `docker` command aimed at this daemon with a private config dir.
    pub fn docker_cmd(&self) -> Command {
        let mut c = Command::new(docker_cli());
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c.env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        c
    }

    /// Runs `docker ARGS…` and returns its output.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    /// Runs `docker ARGS…`, asserts success and returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 40)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// A `berth` command aimed at this daemon.
    pub fn berth_cmd(&self) -> Command {
        let mut c = Command::new(bin("berth"));
        c.env("BERTH_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c.env_remove("DOCKER_HOST");
        c
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run berth")
    }

    pub fn berth_ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// A raw HTTP/1.1 request over the socket: (status, headers, body).
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> HttpResponse {
        self.try_request(method, path, body)
            .expect("request to berthd")
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> std::io::Result<HttpResponse> {
        raw_http(&self.socket(), method, path, body)
    }

    /// Blob and layer integrity: every blob in the content store hashes to its name.
    pub fn verify_store(&self) {
        let blobs = self.data_root().join("blobs/sha256");
        for e in std::fs::read_dir(&blobs).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let mut f = std::fs::File::open(e.path()).unwrap();
            let mut h = <sha2::Sha256 as sha2::Digest>::new();
            std::io::copy(&mut f, &mut HashWriter(&mut h)).unwrap();
            assert_eq!(
                hex::encode(sha2::Digest::finalize(h)),
                name,
                "blob {name} is corrupt"
            );
        }
    }
}

struct HashWriter<'a>(&'a mut sha2::Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(self.0, b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Daemon {
    /// A daemon with `busybox:latest` (a static busybox and its applets) loaded through
    /// the docker CLI.
    pub fn with_busybox() -> Daemon {
        let d = Daemon::start();
        let archive = d.busybox_archive();
        d.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
        d
    }

    /// Writes the `busybox:latest` image archive into this daemon's directory.
    pub fn busybox_archive(&self) -> PathBuf {
        let archive = self.dir.path().join("busybox.tar");
        std::fs::write(
            &archive,
            fixed_time_archive("busybox:latest", &busybox_rootfs_tar(), &["sh"]),
        )
        .unwrap();
        archive
    }

    /// Removes every container through the API (when the daemon runs), then makes
    /// sure nothing of them is left: their processes (by the PIDs the shims and
    /// records name), overlay mounts under this daemon's directory, and cgroups.
    pub fn remove_all_containers(&self) {
        if self.child.is_some()
            && let Ok((200, _, body)) = self.try_request("GET", "/containers/json?all=1", None)
            && let Ok(list) = serde_json::from_slice::<Vec<serde_json::Value>>(&body)
        {
            for c in list {
                if let Some(id) = c["Id"].as_str() {
                    let _ =
                        self.try_request("DELETE", &format!("/containers/{id}?force=1&v=1"), None);
                }
            }
        }
        for pid in self.container_pids() {
            // SAFETY: kill(2) with a PID read from this daemon's own state files.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for mount in self.mounts() {
            let c = std::ffi::CString::new(mount).unwrap();
            // SAFETY: umount2 with a valid C string; failure is harmless here.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        for dir in self.container_cgroups() {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// IDs of the containers this daemon has state for (records or shim dirs).
    pub fn container_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for dir in [
            self.data_root().join("containers"),
            self.dir.path().join("run/c"),
        ] {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.len() == 64 && !ids.contains(&name) {
                        ids.push(name);
                    }
                }
            }
        }
        ids
    }

    /// Live PIDs of shims and container processes named in this daemon's state files.
    pub fn container_pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for id in self.container_ids() {
            let shim = self.dir.path().join("run/c").join(&id).join("shim.pid");
            if let Some(pid) = std::fs::read_to_string(shim)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                pids.push(pid);
            }
            let record = self
                .data_root()
                .join("containers")
                .join(&id)
                .join("config.v2.json");
            if let Some(pid) = std::fs::read(record)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["state"]["pid"].as_i64())
                .filter(|p| *p > 0)
            {
                pids.push(pid as i32);
            }
        }
        pids.retain(|pid| Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(*pid));
        pids
    }

    /// Mount points under this daemon's directory.
    pub fn mounts(&self) -> Vec<String> {
        let root = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&root))
            .map(str::to_string)
            .collect()
    }

    /// cgroup directories of this daemon's containers, in every hierarchy.
    pub fn container_cgroups(&self) -> Vec<PathBuf> {
        let ids = self.container_ids();
        let mut found = Vec::new();
        let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
            return found;
        };
        let mut roots: Vec<PathBuf> = hierarchies.flatten().map(|e| e.path()).collect();
        roots.push(PathBuf::from("/sys/fs/cgroup"));
        for root in roots {
            for id in &ids {
                let dir = root.join("berth").join(id);
                if dir.exists() {
                    found.push(dir);
                }
            }
        }
        found
    }

    /// Panics if a removed container left anything behind: checks the given IDs'
    /// cgroups, and this daemon's shim processes and mounts.
    pub fn assert_no_leaks(&self, ids: &[&str]) {
        let mounts = self.mounts();
        assert!(mounts.is_empty(), "leaked mounts: {mounts:?}");
        let pids = self.container_pids();
        assert!(pids.is_empty(), "leaked processes: {pids:?}");
        for id in ids {
            for root in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
                let dir = root.path().join("berth").join(id);
                assert!(!dir.exists(), "leaked cgroup {}", dir.display());
            }
        }
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.remove_all_containers();
        self.stop();
        // Anything started while the daemon was down (or that it failed to remove).
        self.remove_all_containers();
    }
}

pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Status, lower-cased headers and body of an HTTP answer.
pub type HttpResponse = (u16, Vec<(String, String)>, Vec<u8>);

/// One HTTP/1.1 request on a unix socket, read to the end (Connection: close).
pub fn raw_http(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> std::io::Result<HttpResponse> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    )?;
    if !body.is_empty() {
        write!(s, "Content-Type: application/json\r\n")?;
    }
    write!(s, "\r\n")?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Ok((status, headers, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..start + size]);
        b = &b[start + size + 2..];
    }
    out
}

/// A tar of a minimal busybox root filesystem (Debian's busybox-static plus applet links).
pub fn busybox_rootfs_tar() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (install busybox-static)");
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, p, std::io::empty()).unwrap();
    };
    for d in ["bin", "etc", "tmp", "root"] {
        dir(&mut b, d);
    }
    let mut h = tar::Header::new_gnu();
    h.set_size(busybox.len() as u64);
    h.set_mode(0o755);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/busybox", &busybox[..]).unwrap();
    for applet in [
        "sh", "ls", "cat", "echo", "true", "false", "sleep", "id", "env", "pwd", "hostname", "wc",
        "grep", "touch", "unshare", "mount", "test", "tr", "ps", "mkdir", "rm", "head", "tail",
        "tty", "stty", "kill", "dd", "seq", "yes",
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let passwd =
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(passwd.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
    b.into_inner().unwrap()
}

/// Parses `docker images --format '{{json .}}'`-style output, one JSON object per line.
pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// podman on a private store (vfs, no cgroups, no events), for interoperability tests.
pub struct Podman {
    store: tempfile::TempDir,
}

impl Default for Podman {
    fn default() -> Self {
        Podman::new()
    }
}

impl Podman {
    pub fn new() -> Podman {
        let store = tempfile::Builder::new()
            .prefix("berth-podman-")
            .tempdir()
            .expect("temp dir");
        std::fs::write(store.path().join("auth.json"), "{}").expect("auth file");
        Podman { store }
    }

    /// Runs `podman ARGS…`, asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = Command::new("podman")
            .arg("--root")
            .arg(self.store.path().join("root"))
            .arg("--runroot")
            .arg(self.store.path().join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
            ])
            .args(args)
            .env("CONTAINERS_CONF", "/dev/null")
            .env("REGISTRY_AUTH_FILE", self.store.path().join("auth.json"))
            .output()
            .expect("podman is not installed: run scripts/install-deps.sh");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }
}

/// A docker-archive (`docker save` layout) of one image with a fixed creation time, so
/// outputs with relative times ("2 years ago") do not change while a test runs.
pub fn fixed_time_archive(repo_tag: &str, layer_tar: &[u8], cmd: &[&str]) -> Vec<u8> {
    let hex = |b: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b));
    let diff_id = hex(layer_tar);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": cmd, "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "ADD rootfs.tar /"}],
    }))
    .unwrap();
    let config_name = format!("{}.json", hex(&config));
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": [repo_tag], "Layers": [format!("{diff_id}/layer.tar")]}
    ]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in [
        (config_name.as_str(), &config[..]),
        (&format!("{diff_id}/layer.tar"), layer_tar),
        ("manifest.json", &manifest[..]),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, path, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Polls `check` every 50 ms until it holds; panics after 20 s naming `what`.
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}
