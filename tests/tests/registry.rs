//! berth-registry with its token authorisation, driven by real clients: the docker CLI
//! through berthd (login, push, pull, manifest inspect), podman, skopeo and the berth CLI;
//! and two tenants who cannot reach each other's repositories.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{Daemon, bin, busybox_rootfs_tar};

/// A `berth-registry serve` with token auth on a free 127.0.0.1 port; killed by PID on drop.
struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-e2e-")
            .tempdir()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(bin("berth-registry"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--root"])
            .arg(dir.path().join("root"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let r = Registry { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "berth-registry did not start: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// `berth-registry admin --root ROOT ARGS…`, with `stdin` as input.
    fn admin(&self, args: &[&str], stdin: &str) -> String {
        let mut c = Command::new(bin("berth-registry"))
            .arg("admin")
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn login(d: &Daemon, host: &str, user: &str, password: &str) -> Output {
    let mut c = d
        .docker_cmd()
        .args(["login", host, "-u", user, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    c.wait_with_output().unwrap()
}

/// Two organisations: acme (alice pushes, carol pulls) and globex (bob pushes).
fn tenants(r: &Registry) {
    r.admin(&["org", "create", "acme"], "");
    r.admin(&["org", "create", "globex"], "");
    r.admin(
        &["user", "add", "--org", "acme", "--role", "push", "alice"],
        "alice-pw\n",
    );
    r.admin(
        &["user", "add", "--org", "acme", "--role", "pull", "carol"],
        "carol-pw\n",
    );
    r.admin(
        &["user", "add", "--org", "globex", "--role", "push", "bob"],
        "bob-pw\n",
    );
}

#[test]
fn docker_login_push_pull_and_manifest_inspect_through_berthd() {
    let r = Registry::start();
    tenants(&r);
    let d = Daemon::start();
    let rootfs = d.dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs_tar()).unwrap();
    let image = format!("{}/acme/app:1", r.host());
    let id = d
        .docker_ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            rootfs.to_str().unwrap(),
            &image,
        ])
        .trim()
        .to_string();

    // No credentials: refused with docker's words.
    let out = d.docker(&["push", &image]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("denied") || stderr(&out).contains("unauthorized"),
        "{}",
        stderr(&out)
    );

    let out = login(&d, &r.host(), "alice", "wrong");
    assert!(
        !out.status.success(),
        "login with a wrong password succeeded"
    );
    let out = login(&d, &r.host(), "alice", "alice-pw");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));

    let pushed = d.docker_ok(&["push", &image]);
    assert!(pushed.contains("1: digest: sha256:"), "{pushed}");

    // The docker CLI reads the manifest itself, with the stored credentials.
    let manifest = d.docker_ok(&["manifest", "inspect", "--insecure", &image]);
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(m["schemaVersion"], 2);

    // carol (pull role) pulls into a fresh daemon; she cannot push.
    let d2 = Daemon::start();
    assert!(login(&d2, &r.host(), "carol", "carol-pw").status.success());
    d2.docker_ok(&["pull", &image]);
    assert_eq!(
        d2.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &image])
            .trim(),
        id
    );
    d2.docker_ok(&["tag", &image, &format!("{}/acme/app:carol", r.host())]);
    let out = d2.docker(&["push", &format!("{}/acme/app:carol", r.host())]);
    assert!(!out.status.success(), "a pull-only user pushed");
    assert!(stderr(&out).contains("denied"), "{}", stderr(&out));

    // The audit log saw the push.
    let audit = r.admin(&["audit", "tail", "-n", "100"], "");
    assert!(
        audit.contains("push") && audit.contains("acme/app"),
        "{audit}"
    );
}

#[test]
fn tenants_cannot_reach_each_other_through_real_clients() {
    let r = Registry::start();
    tenants(&r);
    let d = Daemon::start();
    let rootfs = d.dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs_tar()).unwrap();
    let acme = format!("{}/acme/secret:1", r.host());
    d.docker_ok(&["import", rootfs.to_str().unwrap(), &acme]);
    assert!(login(&d, &r.host(), "alice", "alice-pw").status.success());
    let pushed = d.docker_ok(&["push", &acme]);
    let digest = pushed
        .split("digest: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    // bob (globex) tries to pull acme's image by tag and by digest, and to push into acme.
    let b = Daemon::start();
    assert!(login(&b, &r.host(), "bob", "bob-pw").status.success());
    for target in [acme.clone(), format!("{}/acme/secret@{digest}", r.host())] {
        let out = b.docker(&["pull", &target]);
        assert!(!out.status.success(), "bob pulled {target}");
        assert!(
            stderr(&out).contains("pull access denied") || stderr(&out).contains("denied"),
            "{}",
            stderr(&out)
        );
    }
    b.docker_ok(&[
        "import",
        rootfs.to_str().unwrap(),
        &format!("{}/acme/evil:1", r.host()),
    ]);
    let out = b.docker(&["push", &format!("{}/acme/evil:1", r.host())]);
    assert!(!out.status.success(), "bob pushed into acme");
    // bob's own organisation works, and his push cannot mount acme's layer.
    b.docker_ok(&[
        "tag",
        &format!("{}/acme/evil:1", r.host()),
        &format!("{}/globex/app:1", r.host()),
    ]);
    let own = b.docker_ok(&["push", &format!("{}/globex/app:1", r.host())]);
    assert!(!own.contains("Mounted from acme"), "{own}");
    // skopeo with bob's credentials sees neither acme's tags nor acme in the catalog.
    let out = Command::new("skopeo")
        .args([
            "list-tags",
            "--tls-verify=false",
            "--creds",
            "bob:bob-pw",
            &format!("docker://{acme}"),
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "bob listed acme's tags: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Anonymous: nothing at all.
    let anon = Daemon::start();
    let out = anon.docker(&["pull", &acme]);
    assert!(!out.status.success());
    // Made public, anyone may pull it (and only pull).
    r.admin(&["repo", "set-public", "acme/secret"], "");
    anon.docker_ok(&["pull", &acme]);
}

#[test]
fn skopeo_and_podman_push_and_pull_and_berth_pulls_what_they_pushed() {
    let r = Registry::start();
    tenants(&r);
    let d = Daemon::start();
    let rootfs = d.dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs_tar()).unwrap();
    // An archive to feed skopeo and podman.
    d.docker_ok(&["import", rootfs.to_str().unwrap(), "local/bb:1"]);
    let archive = d.dir.path().join("bb.tar");
    d.docker_ok(&["save", "-o", archive.to_str().unwrap(), "local/bb:1"]);

    let skopeo = |args: &[&str]| {
        let out = Command::new("skopeo").args(args).output().unwrap();
        assert!(out.status.success(), "skopeo {args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let by_skopeo = format!("docker://{}/acme/from-skopeo:1", r.host());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:alice-pw",
        &format!("docker-archive:{}", archive.display()),
        &by_skopeo,
    ]);
    let inspect: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "carol:carol-pw",
        &by_skopeo,
    ]))
    .unwrap();
    assert_eq!(inspect["Os"], "linux");
    let tags = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        "carol:carol-pw",
        &format!("docker://{}/acme/from-skopeo", r.host()),
    ]);
    assert!(tags.contains("\"1\""), "{tags}");
    let out_dir = d.dir.path().join("skopeo-out");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        "carol:carol-pw",
        &by_skopeo,
        &format!("dir:{}", out_dir.display()),
    ]);
    assert!(out_dir.join("manifest.json").exists());

    // podman pushes with its own client.
    let pod = berth_tests::Podman::new();
    let podman = |args: &[&str]| pod.ok(args);
    let by_podman = format!("{}/acme/from-podman:1", r.host());
    podman(&["load", "-i", archive.to_str().unwrap()]);
    podman(&["tag", "docker.io/local/bb:1", &by_podman]);
    podman(&[
        "push",
        "--tls-verify=false",
        "--creds",
        "alice:alice-pw",
        &by_podman,
    ]);
    podman(&["rmi", &by_podman]);
    podman(&[
        "pull",
        "--tls-verify=false",
        "--creds",
        "carol:carol-pw",
        &by_podman,
    ]);

    // berth pulls what each of them pushed.
    assert!(login(&d, &r.host(), "carol", "carol-pw").status.success());
    for name in [
        format!("{}/acme/from-skopeo:1", r.host()),
        by_podman.clone(),
    ] {
        d.docker_ok(&["pull", &name]);
    }
    d.verify_store();
    // Deleting takes the admin role: alice (push) is refused, an acme admin may.
    let out = Command::new("skopeo")
        .args([
            "delete",
            "--tls-verify=false",
            "--creds",
            "alice:alice-pw",
            &by_skopeo,
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && stderr(&out).contains("denied"),
        "a push-role user deleted: {}",
        stderr(&out)
    );
    r.admin(
        &["user", "add", "--org", "acme", "--role", "admin", "dave"],
        "dave-pw\n",
    );
    skopeo(&[
        "delete",
        "--tls-verify=false",
        "--creds",
        "dave:dave-pw",
        &by_skopeo,
    ]);
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            "carol:carol-pw",
            &by_skopeo,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "deleted manifest still served");
}
