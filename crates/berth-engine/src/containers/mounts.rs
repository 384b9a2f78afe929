//! Binds, volumes and tmpfs mounts: parsed from `HostConfig.Binds`/`Mounts`/`VolumesFrom`
//! and the image's `VOLUME`s at create (as inspect's `Mounts`), turned into OCI mounts at
//! start.

use std::path::Path;

use bollard_stubs::models::{HostConfig, MountPoint, MountType};
use oci_spec::runtime::{Mount, MountBuilder};

use crate::error::{EngineError, Result};

/// One mount of the container as planned at create.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Planned {
    Bind {
        source: String,
        destination: String,
        read_only: bool,
        propagation: String,
        /// `--mount type=bind` refuses a missing source; `-v` creates it.
        create_source: bool,
    },
    Volume {
        /// `None` for an anonymous volume, named at create.
        name: Option<String>,
        destination: String,
        read_only: bool,
        no_copy: bool,
    },
    Tmpfs {
        destination: String,
        options: Vec<String>,
    },
}

impl Planned {
    pub fn destination(&self) -> &str {
        match self {
            Planned::Bind { destination, .. }
            | Planned::Volume { destination, .. }
            | Planned::Tmpfs { destination, .. } => destination,
        }
    }
}

fn invalid_spec(spec: &str) -> EngineError {
    EngineError::invalid(format!("invalid volume specification: '{spec}'"))
}

/// Parses one `-v` entry: `DEST`, `NAME:DEST[:OPTS]` or `/HOST:DEST[:OPTS]`.
pub fn parse_bind(spec: &str) -> Result<Planned> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, options) = match parts.as_slice() {
        [dest] => ("", *dest, ""),
        [src, dest] => (*src, *dest, ""),
        [src, dest, opts] => (*src, *dest, *opts),
        _ => return Err(invalid_spec(spec)),
    };
    if destination.is_empty() || !destination.starts_with('/') {
        return Err(EngineError::invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{}\": invalid mount path: '{destination}' mount path must be absolute",
            if source.starts_with('/') {
                "bind"
            } else {
                "volume"
            }
        )));
    }
    if destination == "/" {
        return Err(EngineError::invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        )));
    }
    let mut read_only = false;
    let mut no_copy = false;
    let mut propagation = String::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" => no_copy = true,
            "z" | "Z" | "consistent" | "cached" | "delegated" => {}
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {
                propagation = option.to_string()
            }
            _ => return Err(invalid_spec(spec)),
        }
    }
    let destination = clean(destination);
    if source.is_empty() {
        return Ok(Planned::Volume {
            name: None,
            destination,
            read_only,
            no_copy,
        });
    }
    if source.starts_with('/') {
        Ok(Planned::Bind {
            source: clean(source),
            destination,
            read_only,
            propagation: if propagation.is_empty() {
                "rprivate".into()
            } else {
                propagation
            },
            create_source: true,
        })
    } else {
        Ok(Planned::Volume {
            name: Some(source.to_string()),
            destination,
            read_only,
            no_copy,
        })
    }
}

/// Parses one `HostConfig.Mounts` entry (`--mount`).
pub fn parse_mount(mount: &bollard_stubs::models::Mount) -> Result<Planned> {
    let target = mount.target.clone().unwrap_or_default();
    let kind = mount.typ.unwrap_or(MountType::VOLUME);
    let kind_name = kind.to_string();
    if target.is_empty() {
        return Err(EngineError::invalid(format!(
            "invalid mount config for type \"{kind_name}\": field Target must not be empty"
        )));
    }
    if !target.starts_with('/') {
        return Err(EngineError::invalid(format!(
            "invalid mount config for type \"{kind_name}\": invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    let read_only = mount.read_only.unwrap_or(false);
    let source = mount.source.clone().unwrap_or_default();
    match kind {
        MountType::BIND => {
            if source.is_empty() {
                return Err(EngineError::invalid(
                    "invalid mount config for type \"bind\": field Source must not be empty",
                ));
            }
            if !Path::new(&source).exists() {
                return Err(EngineError::invalid(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {source}"
                )));
            }
            let propagation = mount
                .bind_options
                .as_ref()
                .and_then(|o| o.propagation)
                .map(|p| p.to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "rprivate".into());
            Ok(Planned::Bind {
                source: clean(&source),
                destination: clean(&target),
                read_only,
                propagation,
                create_source: false,
            })
        }
        MountType::VOLUME => Ok(Planned::Volume {
            name: (!source.is_empty()).then_some(source),
            destination: clean(&target),
            read_only,
            no_copy: mount
                .volume_options
                .as_ref()
                .and_then(|o| o.no_copy)
                .unwrap_or(false),
        }),
        MountType::TMPFS => {
            if !source.is_empty() {
                return Err(EngineError::invalid(
                    "invalid mount config for type \"tmpfs\": field Source must be empty",
                ));
            }
            let mut options = vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                "noexec".to_string(),
            ];
            if let Some(tmpfs) = &mount.tmpfs_options {
                if let Some(size) = tmpfs.size_bytes.filter(|s| *s > 0) {
                    options.push(format!("size={}k", (size + 1023) / 1024));
                }
                if let Some(mode) = tmpfs.mode.filter(|m| *m > 0) {
                    options.push(format!("mode={mode:o}"));
                }
            }
            if read_only {
                options.push("ro".into());
            }
            Ok(Planned::Tmpfs {
                destination: clean(&target),
                options,
            })
        }
        other => Err(EngineError::invalid(format!(
            "mount type \"{other}\" is not supported"
        ))),
    }
}

/// Every user mount of a create request, in order, rejecting duplicate destinations.
pub fn plan(host: &HostConfig, image_volumes: &[String]) -> Result<Vec<Planned>> {
    let mut planned = Vec::new();
    for bind in host.binds.iter().flatten() {
        planned.push(parse_bind(bind)?);
    }
    for mount in host.mounts.iter().flatten() {
        planned.push(parse_mount(mount)?);
    }
    for (i, a) in planned.iter().enumerate() {
        if planned[..i]
            .iter()
            .any(|b| b.destination() == a.destination())
        {
            return Err(EngineError::invalid(format!(
                "Duplicate mount point: {}",
                a.destination()
            )));
        }
    }
    // The image's VOLUMEs not covered by a user mount or --tmpfs become anonymous volumes.
    let tmpfs: Vec<String> = host
        .tmpfs
        .iter()
        .flatten()
        .map(|(dest, _)| clean(dest))
        .collect();
    for volume in image_volumes {
        let destination = clean(volume);
        if planned.iter().any(|p| p.destination() == destination) || tmpfs.contains(&destination) {
            continue;
        }
        planned.push(Planned::Volume {
            name: None,
            destination,
            read_only: false,
            no_copy: false,
        });
    }
    Ok(planned)
}

/// inspect's view of a mount, once volume names and sources are known.
pub fn mount_point(planned: &Planned, volume_source: Option<&Path>) -> Option<MountPoint> {
    match planned {
        Planned::Bind {
            source,
            destination,
            read_only,
            propagation,
            ..
        } => Some(MountPoint {
            typ: Some("bind".to_string()),
            source: Some(source.clone()),
            destination: Some(destination.clone()),
            mode: Some(String::new()),
            rw: Some(!read_only),
            propagation: Some(propagation.clone()),
            ..Default::default()
        }),
        Planned::Volume {
            name,
            destination,
            read_only,
            ..
        } => Some(MountPoint {
            typ: Some("volume".to_string()),
            name: name.clone(),
            source: volume_source.map(|p| p.to_string_lossy().into_owned()),
            destination: Some(destination.clone()),
            driver: Some("local".into()),
            mode: Some(String::new()),
            rw: Some(!read_only),
            propagation: Some(String::new()),
        }),
        Planned::Tmpfs { .. } => None,
    }
}

/// The OCI mount for a bind or volume (`source` is the host path).
pub fn bind_mount(source: &Path, destination: &str, read_only: bool, propagation: &str) -> Mount {
    let mut options = vec!["rbind".to_string()];
    if !propagation.is_empty() {
        options.push(propagation.to_string());
    } else {
        options.push("rprivate".to_string());
    }
    if read_only {
        options.push("ro".to_string());
    }
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(options)
        .build()
        .expect("all mount fields set")
}

pub fn tmpfs_mount(destination: &str, options: &[String]) -> Mount {
    MountBuilder::default()
        .destination(destination)
        .typ("tmpfs")
        .source("tmpfs")
        .options(options.to_vec())
        .build()
        .expect("all mount fields set")
}

/// A path without `.`/`..`/duplicate slashes, as Go's `filepath.Clean` makes it.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse_like_docker() {
        assert_eq!(
            parse_bind("/host/dir:/data:ro").unwrap(),
            Planned::Bind {
                source: "/host/dir".into(),
                destination: "/data".into(),
                read_only: true,
                propagation: "rprivate".into(),
                create_source: true
            }
        );
        assert_eq!(
            parse_bind("cache:/var/cache").unwrap(),
            Planned::Volume {
                name: Some("cache".into()),
                destination: "/var/cache".into(),
                read_only: false,
                no_copy: false
            }
        );
        assert!(matches!(
            parse_bind("/anon").unwrap(),
            Planned::Volume { name: None, .. }
        ));
        assert!(parse_bind("a:b:c:d").is_err());
        assert!(parse_bind("/x:/y:bogus").is_err());
        assert!(
            parse_bind("x:relative")
                .unwrap_err()
                .message
                .contains("mount path must be absolute")
        );
    }

    #[test]
    fn image_volumes_become_anonymous_unless_covered() {
        let host = HostConfig {
            binds: Some(vec!["data:/data".into()]),
            ..Default::default()
        };
        let plan = plan(&host, &["/data".into(), "/logs/".into()]).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[1].destination(), "/logs");
        let dup = HostConfig {
            binds: Some(vec!["a:/d".into(), "/b:/d".into()]),
            ..Default::default()
        };
        assert_eq!(
            super::plan(&dup, &[]).unwrap_err().message,
            "Duplicate mount point: /d"
        );
    }

    #[test]
    fn paths_are_cleaned() {
        assert_eq!(clean("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(clean("/"), "/");
    }
}
