//! `--security-opt`, parsed with dockerd's rules (`parseSecurityOpt`).

use crate::SpecError;

/// Which seccomp profile a container asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompChoice {
    /// Docker's default profile (no option, or `seccomp=builtin`).
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=<profile JSON>` (the CLI sends the file's content).
    Custom(String),
}

/// The security options that change the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityOpts {
    pub no_new_privileges: bool,
    pub seccomp: SeccompChoice,
    /// `writable-cgroups`: mount `/sys/fs/cgroup` read-write.
    pub writable_cgroups: bool,
}

fn parse_bool(value: &str) -> Option<bool> {
    // Go's strconv.ParseBool.
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses the options. AppArmor and SELinux labels are accepted and ignored (berth
/// applies neither yet).
pub fn parse(options: &[String]) -> Result<SecurityOpts, SpecError> {
    let mut out = SecurityOpts {
        no_new_privileges: false,
        seccomp: SeccompChoice::Default,
        writable_cgroups: false,
    };
    for opt in options {
        match opt.as_str() {
            "no-new-privileges" => {
                out.no_new_privileges = true;
                continue;
            }
            "writable-cgroups" => {
                out.writable_cgroups = true;
                continue;
            }
            "disable" => continue,
            _ => {}
        }
        // `key=value`; the old `key:value` form is still accepted, as dockerd does.
        let split = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((key, value)) = split else {
            return Err(SpecError::SecurityOptFormat(opt.clone()));
        };
        let bad = || SpecError::SecurityOpt(opt.clone());
        match key {
            "label" | "apparmor" => {}
            "seccomp" => {
                out.seccomp = match value {
                    "unconfined" => SeccompChoice::Unconfined,
                    "builtin" => SeccompChoice::Default,
                    json => SeccompChoice::Custom(json.to_string()),
                }
            }
            "no-new-privileges" => out.no_new_privileges = parse_bool(value).ok_or_else(bad)?,
            "writable-cgroups" => out.writable_cgroups = parse_bool(value).ok_or_else(bad)?,
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Result<SecurityOpts, String> {
        let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        parse(&opts).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let o = p(&[]).unwrap();
        assert_eq!(o.seccomp, SeccompChoice::Default);
        assert!(!o.no_new_privileges && !o.writable_cgroups);
    }

    #[test]
    fn seccomp_and_no_new_privileges() {
        let o = p(&["seccomp=unconfined", "no-new-privileges"]).unwrap();
        assert_eq!(o.seccomp, SeccompChoice::Unconfined);
        assert!(o.no_new_privileges);
        let o = p(&["no-new-privileges=true", "no-new-privileges:false"]).unwrap();
        assert!(!o.no_new_privileges);
        let o = p(&[r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#]).unwrap();
        assert_eq!(
            o.seccomp,
            SeccompChoice::Custom(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#.into())
        );
        assert_eq!(
            p(&["seccomp=builtin"]).unwrap().seccomp,
            SeccompChoice::Default
        );
        assert!(p(&["apparmor=docker-default", "label=disable", "disable"]).is_ok());
        assert!(p(&["writable-cgroups=true"]).unwrap().writable_cgroups);
    }

    #[test]
    fn bad_options_fail_like_dockerd() {
        assert_eq!(
            p(&["bogus"]),
            Err(r#"invalid --security-opt 1: "bogus""#.into())
        );
        assert_eq!(
            p(&["bogus=1"]),
            Err(r#"invalid --security-opt 2: "bogus=1""#.into())
        );
        assert_eq!(
            p(&["no-new-privileges=maybe"]),
            Err(r#"invalid --security-opt 2: "no-new-privileges=maybe""#.into())
        );
    }
}
