//! Which daemon to talk to (`-H`, `BERTH_HOST`, `DOCKER_HOST`, the default socket), API
//! version negotiation, and starting `berthd` when the default socket has no daemon.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bollard::{API_DEFAULT_VERSION, Docker};
use http::Method;

use crate::client::{Client, Host, cannot_connect, raw};
use crate::errors::CliError;

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
const DEFAULT_EXEC_ROOT: &str = "/run/berth";
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests stream for as long as they need (pulls, loads, events), as with docker.
const REQUEST_TIMEOUT_SECS: u64 = 24 * 3600;

/// The daemon address and whether the user chose it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostChoice {
    pub url: String,
    pub explicit: bool,
}

/// `-H` (at most one), else `BERTH_HOST`, else `DOCKER_HOST`, else the default socket.
pub fn choose_host(
    flags: &[String],
    berth_host: Option<String>,
    docker_host: Option<String>,
) -> Result<HostChoice, CliError> {
    if flags.len() > 1 {
        return Err(CliError::msg(
            "Failed to initialize: unable to resolve berth endpoint: Specify only one -H",
        ));
    }
    if let Some(h) = flags.first() {
        return Ok(HostChoice {
            url: h.clone(),
            explicit: true,
        });
    }
    for env in [berth_host, docker_host].into_iter().flatten() {
        if !env.is_empty() {
            return Ok(HostChoice {
                url: env,
                explicit: true,
            });
        }
    }
    Ok(HostChoice {
        url: default_host(),
        explicit: false,
    })
}

/// berthd's run directory: `BERTH_EXEC_ROOT` (which berthd honours too), else `/run/berth`.
fn exec_root() -> PathBuf {
    std::env::var_os("BERTH_EXEC_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_EXEC_ROOT))
}

/// The socket a berthd started without flags listens on.
fn default_host() -> String {
    if std::env::var_os("BERTH_EXEC_ROOT").is_some_and(|v| !v.is_empty()) {
        format!("unix://{}", exec_root().join("berth.sock").display())
    } else {
        DEFAULT_HOST.to_string()
    }
}

/// Parses `unix:///path` or `tcp://host[:port]` (port 2375 by default).
pub fn parse_host(url: &str) -> Result<Host, CliError> {
    let bad = || CliError::msg(format!("unable to parse docker host `{url}`"));
    if let Some(path) = url.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(bad());
        }
        return Ok(Host::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = url
        .strip_prefix("tcp://")
        .or_else(|| url.strip_prefix("http://"))
    {
        let addr = rest.trim_end_matches('/');
        if addr.contains('/') {
            return Err(bad());
        }
        let addr = match addr {
            "" => "127.0.0.1:2375".to_string(),
            a if a.starts_with(':') => format!("127.0.0.1{a}"),
            a if a
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.bytes().all(|c| c.is_ascii_digit())) =>
            {
                a.to_string()
            }
            a => format!("{a}:2375"),
        };
        return Ok(Host::Tcp(addr));
    }
    if url.starts_with('/') {
        return Ok(Host::Unix(PathBuf::from(url)));
    }
    // Like docker, a bare `host[:port]` is a TCP address.
    if !url.is_empty() && !url.contains("://") {
        return parse_host(&format!("tcp://{url}"));
    }
    Err(bad())
}

fn socket_answers(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Connects, starting `berthd` first when no host was chosen and nothing listens on the
/// default socket, and negotiates the API version.
pub async fn connect(choice: &HostChoice) -> Result<Client, CliError> {
    let host = parse_host(&choice.url)?;
    if let (Host::Unix(path), false) = (&host, choice.explicit)
        && !socket_answers(path)
    {
        start_daemon(&host).await?;
    }
    let docker = match &host {
        Host::Unix(p) => Docker::connect_with_unix(
            &p.to_string_lossy(),
            REQUEST_TIMEOUT_SECS,
            API_DEFAULT_VERSION,
        ),
        Host::Tcp(a) => Docker::connect_with_http(
            &format!("tcp://{a}"),
            REQUEST_TIMEOUT_SECS,
            API_DEFAULT_VERSION,
        ),
    }
    .map_err(|_| cannot_connect(&host))?;
    let docker = match docker.negotiate_version().await {
        Ok(d) => d,
        Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
            return Err(CliError::msg(format!(
                "Error response from daemon: {message}"
            )));
        }
        Err(_) => return Err(cannot_connect(&host)),
    };
    let v = docker.client_version();
    let api_version = format!("{}.{}", v.major_version, v.minor_version);
    tracing::debug!(host = %host.url(), api_version, "connected");
    Ok(Client {
        docker,
        host,
        api_version,
    })
}

/// `berthd` next to this executable, else on `PATH`.
fn find_daemon() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("berthd")));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("berthd"))
        .find(|p| p.is_file())
}

async fn ping(host: &Host) -> bool {
    match raw::send(host, Method::GET, "/_ping", &[], None).await {
        Ok(resp) => resp.status().is_success(),
        Err(_) => false,
    }
}

/// Spawns `berthd` detached (own process group, output appended to its log) and waits up to
/// ten seconds for `/_ping` to answer.
async fn start_daemon(host: &Host) -> Result<(), CliError> {
    let Some(exe) = find_daemon() else {
        tracing::debug!("berthd not found next to berth or on PATH");
        return Err(cannot_connect(host));
    };
    tracing::debug!(daemon = %exe.display(), "starting the daemon");
    let log_path = exec_root().join("berthd.log");
    let log = log_path.as_path();
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let (out, err) = match OpenOptions::new().create(true).append(true).open(log) {
        Ok(f) => match f.try_clone() {
            Ok(f2) => (Stdio::from(f), Stdio::from(f2)),
            Err(_) => (Stdio::null(), Stdio::null()),
        },
        Err(_) => (Stdio::null(), Stdio::null()),
    };
    let mut child = Command::new(&exe)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            tracing::debug!("cannot start {}: {e}", exe.display());
            cannot_connect(host)
        })?;
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if ping(host).await {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            tracing::debug!("berthd exited early: {status}; see {}", log_path.display());
            return Err(cannot_connect(host));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(cannot_connect(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_precedence() {
        let c = choose_host(&[], None, None).unwrap();
        assert_eq!(
            c,
            HostChoice {
                url: DEFAULT_HOST.into(),
                explicit: false
            }
        );
        let c = choose_host(
            &[],
            Some("unix:///b.sock".into()),
            Some("unix:///d.sock".into()),
        )
        .unwrap();
        assert_eq!(c.url, "unix:///b.sock");
        let c = choose_host(&[], Some(String::new()), Some("unix:///d.sock".into())).unwrap();
        assert_eq!(c.url, "unix:///d.sock");
        let c = choose_host(&["tcp://x:1".into()], Some("unix:///b.sock".into()), None).unwrap();
        assert_eq!((c.url.as_str(), c.explicit), ("tcp://x:1", true));
        assert!(choose_host(&["a".into(), "b".into()], None, None).is_err());
    }

    #[test]
    fn host_urls() {
        assert_eq!(
            parse_host("unix:///run/berth/berth.sock").unwrap(),
            Host::Unix("/run/berth/berth.sock".into())
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:2376").unwrap(),
            Host::Tcp("127.0.0.1:2376".into())
        );
        assert_eq!(
            parse_host("tcp://example").unwrap(),
            Host::Tcp("example:2375".into())
        );
        assert_eq!(
            parse_host("tcp://:4000").unwrap(),
            Host::Tcp("127.0.0.1:4000".into())
        );
        assert!(parse_host("ssh://x").is_err());
        assert_eq!(
            parse_host("example:1234").unwrap(),
            Host::Tcp("example:1234".into())
        );
        assert!(parse_host("unix://").is_err());
    }

    #[tokio::test]
    async fn explicit_hosts_are_not_started() {
        let choice = HostChoice {
            url: "unix:///nonexistent/berth-test.sock".into(),
            explicit: true,
        };
        let err = connect(&choice).await.err().unwrap();
        assert_eq!(
            err.message,
            "Cannot connect to the berth daemon at unix:///nonexistent/berth-test.sock. Is the berth daemon running?"
        );
    }
}
