//! The container process: its command line (Docker's entrypoint/cmd rules), environment,
//! working directory and rlimits.

use berth_image::config::ContainerConfig;
use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

use crate::{HostConfig, SpecError, Ulimit};

/// The `PATH` Docker gives a Linux container whose image sets none.
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where Docker mounts its init inside the container.
pub const INIT_PATH_IN_CONTAINER: &str = "/sbin/docker-init";

/// The command line: the entrypoint followed by the command, with Docker's merge rules.
/// `--entrypoint` (non-empty) makes the image's `Cmd` irrelevant; `--entrypoint ""`
/// resets the entrypoint too; an explicit empty entrypoint list (API) keeps the image's
/// `Cmd`.
pub fn command(host: &HostConfig, image: &ContainerConfig) -> Result<Vec<String>, SpecError> {
    let image_cmd = || image.cmd.clone().unwrap_or_default();
    let (entrypoint, cmd) = match &host.entrypoint {
        None => {
            let cmd = if host.cmd.is_empty() {
                image_cmd()
            } else {
                host.cmd.clone()
            };
            (image.entrypoint.clone().unwrap_or_default(), cmd)
        }
        Some(ep) if ep.is_empty() => {
            let cmd = if host.cmd.is_empty() {
                image_cmd()
            } else {
                host.cmd.clone()
            };
            (Vec::new(), cmd)
        }
        Some(ep) if ep.len() == 1 && ep[0].is_empty() => (Vec::new(), host.cmd.clone()),
        Some(ep) => (ep.clone(), host.cmd.clone()),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// Prepends the init (`/sbin/docker-init --`), as Docker does for `--init`.
pub fn with_init(args: Vec<String>) -> Vec<String> {
    [INIT_PATH_IN_CONTAINER.to_string(), "--".to_string()]
        .into_iter()
        .chain(args)
        .collect()
}

fn key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// The environment: `PATH` (Docker's default), `HOSTNAME`, `TERM=xterm` with a tty,
/// then the container's variables (the `-e` ones first, then the image's that `-e` did
/// not set). A later value for the same key replaces the earlier one in place; a bare
/// `KEY` removes one of the defaults.
pub fn environment(host: &HostConfig, image: &ContainerConfig) -> Vec<String> {
    let image_env = image.env.clone().unwrap_or_default();
    let mut config_env: Vec<String> = host.env.clone();
    for e in image_env {
        if !host.env.iter().any(|u| key(u) == key(&e)) {
            config_env.push(e);
        }
    }

    let mut env: Vec<Option<String>> = vec![
        Some(DEFAULT_PATH_ENV.to_string()),
        Some(format!("HOSTNAME={}", host.hostname)),
    ];
    if host.tty {
        env.push(Some("TERM=xterm".to_string()));
    }
    let defaults = env.len();
    for value in config_env {
        let existing = env
            .iter()
            .position(|e| e.as_deref().is_some_and(|e| key(e) == key(&value)));
        match (value.contains('='), existing) {
            (true, Some(i)) => env[i] = Some(value),
            (true, None) => env.push(Some(value)),
            // Only the defaults can be unset this way (Docker's ReplaceOrAppendEnvValues).
            (false, Some(i)) if i < defaults => env[i] = None,
            (false, _) => {}
        }
    }
    env.into_iter().flatten().collect()
}

/// The working directory: `-w`, else the image's, else `/`; it must be absolute.
pub fn working_dir(host: &HostConfig, image: &ContainerConfig) -> Result<String, SpecError> {
    let dir = if !host.working_dir.is_empty() {
        host.working_dir.clone()
    } else {
        image.working_dir.clone().unwrap_or_default()
    };
    if dir.is_empty() {
        return Ok("/".to_string());
    }
    if !dir.starts_with('/') {
        return Err(SpecError::RelativeWorkingDir(dir));
    }
    Ok(dir)
}

/// `--ulimit` as OCI rlimits (`nofile` → `RLIMIT_NOFILE`; `-1` is unlimited).
pub fn rlimits(ulimits: &[Ulimit]) -> Result<Vec<PosixRlimit>, SpecError> {
    ulimits
        .iter()
        .map(|u| {
            let typ = match u.name.as_str() {
                "core" => PosixRlimitType::RlimitCore,
                "cpu" => PosixRlimitType::RlimitCpu,
                "data" => PosixRlimitType::RlimitData,
                "fsize" => PosixRlimitType::RlimitFsize,
                "locks" => PosixRlimitType::RlimitLocks,
                "memlock" => PosixRlimitType::RlimitMemlock,
                "msgqueue" => PosixRlimitType::RlimitMsgqueue,
                "nice" => PosixRlimitType::RlimitNice,
                "nofile" => PosixRlimitType::RlimitNofile,
                "nproc" => PosixRlimitType::RlimitNproc,
                "rss" => PosixRlimitType::RlimitRss,
                "rtprio" => PosixRlimitType::RlimitRtprio,
                "rttime" => PosixRlimitType::RlimitRttime,
                "sigpending" => PosixRlimitType::RlimitSigpending,
                "stack" => PosixRlimitType::RlimitStack,
                other => return Err(SpecError::UlimitType(other.to_string())),
            };
            if u.soft != -1 && u.hard != -1 && u.soft > u.hard {
                return Err(SpecError::UlimitRange {
                    soft: u.soft,
                    hard: u.hard,
                });
            }
            // Go's uint64(-1): unlimited.
            let unsigned = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
            Ok(PosixRlimitBuilder::default()
                .typ(typ)
                .soft(unsigned(u.soft))
                .hard(unsigned(u.hard))
                .build()?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ContainerConfig {
        ContainerConfig {
            entrypoint: entrypoint.map(s),
            cmd: cmd.map(s),
            ..Default::default()
        }
    }

    fn host(entrypoint: Option<&[&str]>, cmd: &[&str]) -> HostConfig {
        HostConfig {
            entrypoint: entrypoint.map(s),
            cmd: s(cmd),
            ..Default::default()
        }
    }

    #[test]
    fn image_entrypoint_and_cmd_by_default() {
        let img = image(Some(&["/entry.sh"]), Some(&["serve", "--port=80"]));
        assert_eq!(
            command(&host(None, &[]), &img).unwrap(),
            s(&["/entry.sh", "serve", "--port=80"])
        );
    }

    #[test]
    fn user_cmd_replaces_image_cmd_but_keeps_entrypoint() {
        let img = image(Some(&["/entry.sh"]), Some(&["serve"]));
        assert_eq!(
            command(&host(None, &["debug", "-v"]), &img).unwrap(),
            s(&["/entry.sh", "debug", "-v"])
        );
    }

    #[test]
    fn entrypoint_override_drops_image_cmd() {
        let img = image(Some(&["/entry.sh"]), Some(&["serve"]));
        assert_eq!(
            command(&host(Some(&["ls"]), &[]), &img).unwrap(),
            s(&["ls"])
        );
        assert_eq!(
            command(&host(Some(&["ls"]), &["-l", "/"]), &img).unwrap(),
            s(&["ls", "-l", "/"])
        );
    }

    #[test]
    fn empty_string_entrypoint_resets_both() {
        let img = image(Some(&["/entry.sh"]), Some(&["serve"]));
        assert!(matches!(
            command(&host(Some(&[""]), &[]), &img),
            Err(SpecError::NoCommand)
        ));
        assert_eq!(
            command(&host(Some(&[""]), &["sh", "-c", "true"]), &img).unwrap(),
            s(&["sh", "-c", "true"])
        );
    }

    #[test]
    fn empty_entrypoint_list_keeps_image_cmd() {
        let img = image(Some(&["/entry.sh"]), Some(&["serve"]));
        assert_eq!(command(&host(Some(&[]), &[]), &img).unwrap(), s(&["serve"]));
    }

    #[test]
    fn nothing_to_run_is_dockers_error() {
        let err = command(&host(None, &[]), &image(None, None)).unwrap_err();
        assert_eq!(err.to_string(), "No command specified");
        assert_eq!(with_init(s(&["sh"])), s(&["/sbin/docker-init", "--", "sh"]));
    }

    #[test]
    fn env_defaults_then_user_then_image() {
        let img = ContainerConfig {
            env: Some(s(&["PATH=/custom/bin", "LANG=C", "FOO=image"])),
            ..Default::default()
        };
        let h = HostConfig {
            hostname: "c0ffee".into(),
            tty: true,
            env: s(&["FOO=user", "BAR=1"]),
            ..Default::default()
        };
        assert_eq!(
            environment(&h, &img),
            s(&[
                "PATH=/custom/bin",
                "HOSTNAME=c0ffee",
                "TERM=xterm",
                "FOO=user",
                "BAR=1",
                "LANG=C"
            ])
        );
    }

    #[test]
    fn env_path_default_hostname_and_later_wins() {
        let h = HostConfig {
            hostname: "h".into(),
            env: s(&["A=1", "HOSTNAME=mine", "A=2", "TERM=dumb"]),
            ..Default::default()
        };
        assert_eq!(
            environment(&h, &ContainerConfig::default()),
            s(&[DEFAULT_PATH_ENV, "HOSTNAME=mine", "A=2", "TERM=dumb"])
        );
    }

    #[test]
    fn bare_key_unsets_a_default_only() {
        let h = HostConfig {
            tty: true,
            env: s(&["TERM", "NOT_SET", "HOSTNAME"]),
            ..Default::default()
        };
        assert_eq!(
            environment(&h, &ContainerConfig::default()),
            s(&[DEFAULT_PATH_ENV])
        );
    }

    #[test]
    fn working_dir_rules() {
        let img = ContainerConfig {
            working_dir: Some("/srv".into()),
            ..Default::default()
        };
        let mut h = HostConfig::default();
        assert_eq!(working_dir(&h, &ContainerConfig::default()).unwrap(), "/");
        assert_eq!(working_dir(&h, &img).unwrap(), "/srv");
        h.working_dir = "/tmp".into();
        assert_eq!(working_dir(&h, &img).unwrap(), "/tmp");
        h.working_dir = "rel".into();
        assert_eq!(
            working_dir(&h, &img).unwrap_err().to_string(),
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
    }

    #[test]
    fn ulimits_map_to_rlimits() {
        let limits = rlimits(&[
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048,
            },
            Ulimit {
                name: "core".into(),
                soft: -1,
                hard: -1,
            },
        ])
        .unwrap();
        assert_eq!(limits[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((limits[0].soft(), limits[0].hard()), (1024, 2048));
        assert_eq!((limits[1].soft(), limits[1].hard()), (u64::MAX, u64::MAX));
        let bad = |name: &str, soft, hard| {
            rlimits(&[Ulimit {
                name: name.into(),
                soft,
                hard,
            }])
            .unwrap_err()
            .to_string()
        };
        assert_eq!(bad("files", 1, 1), "invalid ulimit type: files");
        assert_eq!(
            bad("nofile", 10, 5),
            "ulimit soft limit must be less than or equal to hard limit: 10 > 5"
        );
    }
}
