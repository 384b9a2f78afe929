//! Image commands through the unmodified docker CLI against berthd.

use std::io::Write;
use std::process::Stdio;

use berth_tests::{Daemon, busybox_rootfs_tar, json_lines};

fn import_busybox(d: &Daemon, name: &str) -> String {
    let tar = d.dir.path().join("busybox.tar");
    std::fs::write(&tar, busybox_rootfs_tar()).unwrap();
    d.docker_ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "ENV FOO=bar",
        "-m",
        "from the tests",
        tar.to_str().unwrap(),
        name,
    ])
    .trim()
    .to_string()
}

#[test]
fn builtin_hello_world_is_a_real_image() {
    let d = Daemon::start();
    let out = d.docker_ok(&["pull", "hello-world"]);
    assert!(
        out.contains("Status: Downloaded newer image for hello-world:latest"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("docker.io/library/hello-world:latest"),
        "{out}"
    );
    let again = d.docker_ok(&["pull", "hello-world"]);
    assert!(
        again.contains("Image is up to date for hello-world:latest"),
        "{again}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["image", "inspect", "hello-world"])).unwrap();
    let img = &inspect[0];
    assert_eq!(img["Config"]["Cmd"][0], "/hello");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(img["Os"], "linux");
    // The layer holds a program that prints the greeting.
    let lower = img["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
    let hello = std::path::Path::new(lower).join("hello");
    if cfg!(target_arch = "x86_64") {
        let out = std::process::Command::new(&hello).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("Hello from berth!"));
    }
}

#[test]
fn images_lists_filters_and_formats_like_docker() {
    let d = Daemon::start();
    d.docker_ok(&["pull", "hello-world"]);
    let id = import_busybox(&d, "busybox:1.36");
    assert!(id.starts_with("sha256:"), "{id}");
    d.docker_ok(&["tag", "busybox:1.36", "localhost:5000/team/busybox:dev"]);

    let table = d.docker_ok(&["images"]);
    let header = table.lines().next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(table.contains("localhost:5000/team/busybox"), "{table}");
    let ids = d.docker_ok(&["images", "-q"]);
    assert_eq!(ids.lines().count(), 3, "{ids}");
    let busy = d.docker_ok(&[
        "images",
        "--filter",
        "reference=busy*",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(busy.trim(), "busybox:1.36");
    let rows = json_lines(&d.docker_ok(&["images", "--format", "{{json .}}", "--no-trunc"]));
    assert!(rows.iter().any(|r| r["ID"] == id.as_str()), "{rows:?}");
    let dangling = d.docker_ok(&["images", "-f", "dangling=true", "-q"]);
    assert_eq!(dangling.trim(), "");
    let since = d.docker_ok(&[
        "images",
        "--filter",
        "since=hello-world",
        "--format",
        "{{.Repository}}",
    ]);
    assert!(
        since.contains("busybox") && !since.contains("hello-world"),
        "{since}"
    );
    let labels = d.docker_ok(&["images", "--filter", "label=nope", "-q"]);
    assert_eq!(labels.trim(), "");
}

#[test]
fn rmi_untags_before_deleting_and_refuses_ambiguous_ids() {
    let d = Daemon::start();
    let id = import_busybox(&d, "busybox:1");
    d.docker_ok(&["tag", "busybox:1", "other/repo:2"]);
    let out = d.docker(&["rmi", &id[7..19]]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("image is referenced in multiple repositories"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let untag = d.docker_ok(&["rmi", "other/repo:2"]);
    assert_eq!(untag.trim(), "Untagged: other/repo:2");
    assert!(d.docker_ok(&["images", "-q"]).contains(&id[7..19]));
    let del = d.docker_ok(&["rmi", "busybox:1"]);
    assert!(
        del.contains("Untagged: busybox:1") && del.contains(&format!("Deleted: {id}")),
        "{del}"
    );
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    // Nothing is left on disk.
    assert_eq!(
        std::fs::read_dir(d.data_root().join("layers"))
            .unwrap()
            .count(),
        0
    );
    let out = d.docker(&["rmi", "busybox:1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such image: busybox:1"));
    // -f on a multiply tagged image removes every tag.
    let id = import_busybox(&d, "a:1");
    d.docker_ok(&["tag", "a:1", "b:1"]);
    let del = d.docker_ok(&["rmi", "-f", &id]);
    assert!(
        del.contains("Untagged: a:1") && del.contains("Untagged: b:1"),
        "{del}"
    );
}

#[test]
fn history_inspect_and_import_changes() {
    let d = Daemon::start();
    import_busybox(&d, "bb");
    let cfg: serde_json::Value = serde_json::from_str(&d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        "bb",
    ]))
    .unwrap();
    assert_eq!(cfg["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(cfg["Env"], serde_json::json!(["FOO=bar"]));
    let hist = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.Comment}}|{{.Size}}",
        "bb",
    ]);
    assert!(hist.trim().starts_with("from the tests|"), "{hist}");
    let out = d.docker(&["import", "-c", "RUN rm -rf /", "/dev/null", "x"]);
    assert!(!out.status.success());
}

#[test]
fn import_from_stdin_and_url() {
    let d = Daemon::start();
    let tar = busybox_rootfs_tar();
    let mut child = d
        .docker_cmd()
        .args(["import", "-", "from-stdin:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert!(
        d.docker_ok(&["images", "--format", "{{.Repository}}"])
            .contains("from-stdin")
    );

    // A gzip-compressed rootfs served over HTTP on loopback.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let body = gz.finish().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = std::io::Read::read(&mut s, &mut buf);
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
    });
    d.docker_ok(&[
        "import",
        &format!("http://127.0.0.1:{port}/rootfs.tar.gz"),
        "from-url:1",
    ]);
    server.join().unwrap();
    let hist = d.docker_ok(&["history", "--format", "{{.Comment}}", "from-url:1"]);
    assert!(
        hist.contains(&format!(
            "Imported from http://127.0.0.1:{port}/rootfs.tar.gz"
        )),
        "{hist}"
    );
}

#[test]
fn save_and_load_round_trip() {
    let d = Daemon::start();
    let id = import_busybox(&d, "busybox:rt");
    d.docker_ok(&["pull", "hello-world"]);
    let archive = d.dir.path().join("saved.tar");
    d.docker_ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "busybox:rt",
        "hello-world",
    ]);
    let names: Vec<String> = tar::Archive::new(std::fs::File::open(&archive).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    for n in ["manifest.json", "index.json", "oci-layout"] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    d.docker_ok(&["rmi", "busybox:rt", "hello-world"]);
    let out = d.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        out.contains("Loaded image: busybox:rt")
            && out.contains("Loaded image: hello-world:latest"),
        "{out}"
    );
    assert_eq!(
        d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "busybox:rt"])
            .trim(),
        id
    );
    d.verify_store();
}

#[test]
fn image_prune_removes_dangling_then_all() {
    let d = Daemon::start();
    import_busybox(&d, "keep:1");
    // Re-tagging to a new image leaves the old one dangling.
    let first = import_busybox(&d, "moving:1");
    let tar = d.dir.path().join("other.tar");
    std::fs::write(&tar, berth_tests::testutil::tar_of(&[("x", b"x")])).unwrap();
    d.docker_ok(&["import", tar.to_str().unwrap(), "moving:1"]);
    let dangling = d.docker_ok(&["images", "-f", "dangling=true", "-q", "--no-trunc"]);
    assert_eq!(dangling.trim(), first);
    let out = d.docker_ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {first}")), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    let out = d.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: keep:1"), "{out}");
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
}

#[test]
fn events_and_system_df() {
    let d = Daemon::start();
    d.docker_ok(&["pull", "hello-world"]);
    d.docker_ok(&["tag", "hello-world", "hw:2"]);
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
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    assert!(
        events.contains("image pull") && events.contains("image tag"),
        "{events}"
    );
    let only_tag = d.docker_ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        &now.to_string(),
        "--filter",
        "event=tag",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(only_tag.trim(), "tag");
    let df = d.docker_ok(&["system", "df"]);
    assert!(df.lines().nth(1).unwrap().starts_with("Images"), "{df}");
}

#[test]
fn save_by_name_takes_every_tag_once_also_with_a_registry_port() {
    let d = Daemon::start();
    import_busybox(&d, "localhost:5000/team/bb:1");
    d.docker_ok(&[
        "tag",
        "localhost:5000/team/bb:1",
        "localhost:5000/team/bb:latest",
    ]);
    let archive = d.dir.path().join("s.tar");
    // The name alone saves every tag; adding one of those tags must not list it twice.
    for names in [
        &["localhost:5000/team/bb"][..],
        &["localhost:5000/team/bb", "localhost:5000/team/bb:1"],
    ] {
        let mut args = vec!["save", "-o", archive.to_str().unwrap()];
        args.extend_from_slice(names);
        d.docker_ok(&args);
        let mut a = tar::Archive::new(std::fs::File::open(&archive).unwrap());
        let manifest: serde_json::Value = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("manifest.json"))
            .map(|mut e| serde_json::from_reader(&mut e).unwrap())
            .unwrap();
        let mut tags: Vec<&str> = manifest[0]["RepoTags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        tags.sort();
        assert_eq!(
            tags,
            ["localhost:5000/team/bb:1", "localhost:5000/team/bb:latest"],
            "{names:?}"
        );
    }
}
