//! The API surface: ping headers, versioned paths, errors, version and info.

use berth_tests::Daemon;

fn header<'a>(h: &'a [(String, String)], k: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[test]
fn ping_answers_get_and_head_with_docker_headers() {
    let d = Daemon::start();
    for method in ["GET", "HEAD"] {
        let (status, headers, body) = d.request(method, "/_ping", None);
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "api-version"), Some(berth_api_version()));
        assert_eq!(header(&headers, "ostype"), Some("linux"));
        assert!(header(&headers, "server").unwrap().starts_with("berth/"));
        if method == "GET" {
            assert_eq!(body, b"OK");
        }
    }
}

fn berth_api_version() -> &'static str {
    "1.47"
}

#[test]
fn every_versioned_path_from_1_41_to_newest_is_served() {
    let d = Daemon::start();
    for minor in 41..=47 {
        let (status, _, body) = d.request("GET", &format!("/v1.{minor}/version"), None);
        assert_eq!(status, 200, "v1.{minor}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["ApiVersion"], "1.47");
        let (status, _, _) = d.request("GET", &format!("/v1.{minor}/_ping"), None);
        assert_eq!(status, 200);
    }
    let (status, _, body) = d.request("GET", "/v1.99/version", None);
    assert_eq!(status, 400);
    let msg: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        msg["message"]
            .as_str()
            .unwrap()
            .contains("client version 1.99 is too new"),
        "{msg}"
    );
}

#[test]
fn unknown_paths_and_images_are_docker_errors() {
    let d = Daemon::start();
    let (status, _, body) = d.request("GET", "/v1.47/nope", None);
    assert_eq!(status, 404);
    assert!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["message"].is_string());
    let (status, _, body) = d.request("GET", "/v1.47/images/nosuch:thing/json", None);
    assert_eq!(status, 404);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["message"], "No such image: nosuch:thing");
    let out = d.docker(&["image", "inspect", "nosuch"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such image: nosuch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn docker_version_and_info_talk_to_berthd() {
    let d = Daemon::start();
    let v = d.docker_ok(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(
        v.trim(),
        format!("{} 1.47 linux", env!("CARGO_PKG_VERSION"))
    );
    let info: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["info", "--format", "{{json .}}"])).unwrap();
    assert_eq!(info["Images"], 0);
    assert_eq!(info["OSType"], "linux");
    assert_eq!(info["DockerRootDir"], d.data_root().display().to_string());
    assert_eq!(info["Driver"], "overlay");
}

#[test]
fn daemon_listens_on_tcp_too() {
    let port = free_port();
    let d = Daemon::start_with(&["-H", &format!("tcp://127.0.0.1:{port}")]);
    let out = d
        .docker_cmd()
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // and still on its unix socket
    assert_eq!(d.request("GET", "/_ping", None).0, 200);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
