//! Platforms (`linux/arm/v7`) and docker's rules for picking one out of a manifest list.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DistributionError;

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

/// An image platform as in an OCI index entry. `variant` is the CPU variant (`v7`, `v8`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The platform this process runs on, normalised (arm64 is `v8`, 32-bit arm `v7` or `v6`).
    pub fn host() -> Platform {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            os => os,
        };
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" if cfg!(target_feature = "v7") => ("arm", Some("v7")),
            "arm" => ("arm", Some("v6")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            "loongarch64" => ("loong64", None),
            arch => (arch, None),
        };
        Platform::new(os, arch, variant)
    }

    /// Parses `os/arch[/variant]`, `arch[/variant]` (os of the host) or `os` alone (arch of the
    /// host), as `docker pull --platform` does, and normalises it.
    pub fn parse(s: &str) -> Result<Platform, DistributionError> {
        let invalid = |reason: &str| DistributionError::InvalidPlatform {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let lower = s.trim().to_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.iter().any(|p| {
            p.is_empty()
                || !p
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
        }) {
            return Err(invalid(
                "expected os/arch[/variant], e.g. linux/arm64 or linux/arm/v7",
            ));
        }
        let host = Platform::host();
        let p = match parts.as_slice() {
            [one] if KNOWN_OS.contains(one) => Platform {
                os: one.to_string(),
                ..host
            },
            [arch] => Platform::new(&host.os, arch, None),
            [os, arch] if KNOWN_OS.contains(os) => Platform::new(os, arch, None),
            [arch, variant] => Platform::new(&host.os, arch, Some(variant)),
            [os, arch, variant] => Platform::new(os, arch, Some(variant)),
            _ => return Err(invalid("too many parts, expected os/arch[/variant]")),
        };
        if !KNOWN_OS.contains(&p.os.as_str()) {
            return Err(invalid(&format!("unknown operating system {:?}", p.os)));
        }
        Ok(p.normalized())
    }

    /// Docker's normal form: arch aliases resolved (`aarch64` → `arm64`, `x86_64` → `amd64`,
    /// `armhf` → `arm/v7`), arm64 variant `v8` and arm `v7` when absent, no variant for amd64 v1.
    pub fn normalized(&self) -> Platform {
        let os = match self.os.to_lowercase().as_str() {
            "macos" => "darwin".to_string(),
            os => os.to_string(),
        };
        let variant = self
            .variant
            .as_deref()
            .map(str::to_lowercase)
            .filter(|v| !v.is_empty());
        let (arch, variant): (&str, Option<String>) =
            match self.architecture.to_lowercase().as_str() {
                "x86_64" | "x86-64" | "amd64" => (
                    "amd64",
                    variant
                        .filter(|v| v != "v1" && v != "1")
                        .map(|v| with_v(&v)),
                ),
                "aarch64" | "arm64" => (
                    "arm64",
                    Some(match variant.as_deref() {
                        None | Some("8" | "v8" | "v8.0") => "v8".to_string(),
                        Some(v) => with_v(v),
                    }),
                ),
                "armhf" => ("arm", Some("v7".to_string())),
                "armel" => ("arm", Some("v6".to_string())),
                "arm" => (
                    "arm",
                    Some(variant.map_or_else(|| "v7".to_string(), |v| with_v(&v))),
                ),
                "i386" | "i486" | "i586" | "i686" | "x86" | "386" => ("386", None),
                other => {
                    return Platform {
                        os,
                        architecture: other.to_string(),
                        variant,
                    };
                }
            };
        Platform {
            os,
            architecture: arch.to_string(),
            variant,
        }
    }

    /// Picks the best of `candidates` for this platform with docker's (containerd's) rules: the
    /// exact platform first, then compatible older variants (`arm/v7` runs `arm/v6`, `arm/v5`;
    /// arm64 runs 32-bit `arm/v8` … `arm/v5`; amd64 `v3` runs `v2`, `v1`, then `386`). Among
    /// equally good candidates the first wins. Returns its index.
    pub fn best_match<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a Platform>,
    ) -> Option<usize> {
        let wanted = self.compatible();
        let normalized: Vec<Platform> = candidates.into_iter().map(Platform::normalized).collect();
        wanted
            .iter()
            .find_map(|w| normalized.iter().position(|c| c == w))
    }

    /// The platforms this one can run, best first (containerd's "platform vector").
    fn compatible(&self) -> Vec<Platform> {
        let me = self.normalized();
        let at = |arch: &str, variant: Option<String>| Platform {
            os: me.os.clone(),
            architecture: arch.to_string(),
            variant,
        };
        let major = me.variant.as_deref().and_then(variant_major);
        let mut out = vec![me.clone()];
        match me.architecture.as_str() {
            "amd64" => {
                let level = major.unwrap_or(1);
                for v in (2..level).rev() {
                    out.push(at("amd64", Some(format!("v{v}"))));
                }
                if level > 1 {
                    out.push(at("amd64", None));
                }
                out.push(at("386", None));
            }
            "arm64" => {
                for v in (8..major.unwrap_or(8)).rev() {
                    out.push(at("arm64", Some(format!("v{v}"))));
                }
                for v in (5..=8).rev() {
                    out.push(at("arm", Some(format!("v{v}"))));
                }
            }
            "arm" => {
                for v in (5..major.unwrap_or(7)).rev() {
                    out.push(at("arm", Some(format!("v{v}"))));
                }
            }
            _ => {}
        }
        out.dedup();
        out
    }
}

fn with_v(v: &str) -> String {
    if v.starts_with('v') {
        v.to_string()
    } else {
        format!("v{v}")
    }
}

/// `v8.2` → 8.
fn variant_major(v: &str) -> Option<u32> {
    v.strip_prefix('v')?.split('.').next()?.parse().ok()
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = DistributionError;
    fn from_str(s: &str) -> Result<Platform, DistributionError> {
        Platform::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("linux/amd64/v1").to_string(), "linux/amd64");
        assert_eq!(p("linux/amd64/v3").to_string(), "linux/amd64/v3");
        assert_eq!(p("linux/arm64").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/arm/6").to_string(), "linux/arm/v6");
        assert_eq!(p("Linux/ARM/V7").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/armhf").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/armel").to_string(), "linux/arm/v6");
        assert_eq!(p("linux/i386").to_string(), "linux/386");
        assert_eq!(p("linux/riscv64").to_string(), "linux/riscv64");
        assert_eq!(p("windows").os, "windows");
        assert_eq!(
            p("arm64").to_string(),
            format!("{}/arm64/v8", Platform::host().os)
        );
        for bad in [
            "",
            "linux/",
            "/amd64",
            "linux/amd64/v7/x",
            "mars/amd64/v1",
            "linux/am d64",
        ] {
            let e = Platform::parse(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn host_is_normalised() {
        let h = Platform::host();
        assert_eq!(h, h.normalized());
        if cfg!(target_arch = "x86_64") {
            assert_eq!(h.to_string(), "linux/amd64");
        }
    }

    fn pick(want: &str, entries: &[&str]) -> Option<String> {
        let list: Vec<Platform> = entries
            .iter()
            .map(|e| {
                let parts: Vec<&str> = e.split('/').collect();
                Platform::new(parts[0], parts[1], parts.get(2).copied())
            })
            .collect();
        p(want).best_match(&list).map(|i| entries[i].to_string())
    }

    #[test]
    fn picks_exact_then_compatible_variants() {
        let all = [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "linux/arm/v6",
        ];
        assert_eq!(pick("linux/amd64", &all).as_deref(), Some("linux/amd64"));
        assert_eq!(pick("linux/arm64", &all).as_deref(), Some("linux/arm64/v8"));
        assert_eq!(pick("linux/arm/v7", &all).as_deref(), Some("linux/arm/v7"));
        assert_eq!(pick("linux/arm/v6", &all).as_deref(), Some("linux/arm/v6"));
        assert_eq!(pick("linux/arm/v5", &all), None);
        assert_eq!(pick("linux/s390x", &all), None);
        assert_eq!(pick("windows/amd64", &all), None);
        // arm/v7 hosts run v6 images; arm64 hosts run 32-bit arm.
        assert_eq!(
            pick("linux/arm/v7", &["linux/arm/v5", "linux/arm/v6"]).as_deref(),
            Some("linux/arm/v6")
        );
        assert_eq!(
            pick("linux/arm64", &["linux/arm/v6", "linux/arm/v7"]).as_deref(),
            Some("linux/arm/v7")
        );
        assert_eq!(pick("linux/arm/v6", &["linux/arm/v7"]), None);
        // An arm64 entry without variant is v8; an amd64 v1 entry is plain amd64.
        assert_eq!(
            pick("linux/arm64/v8", &["linux/amd64", "linux/arm64"]).as_deref(),
            Some("linux/arm64")
        );
        assert_eq!(
            pick("linux/amd64", &["linux/amd64/v1"]).as_deref(),
            Some("linux/amd64/v1")
        );
        // amd64 levels go down, never up, and 386 is the last resort.
        assert_eq!(
            pick("linux/amd64", &["linux/amd64/v3", "linux/386"]).as_deref(),
            Some("linux/386")
        );
        assert_eq!(
            pick("linux/amd64/v3", &["linux/amd64", "linux/amd64/v2"]).as_deref(),
            Some("linux/amd64/v2")
        );
        // The first of equal entries wins.
        assert_eq!(
            pick(
                "linux/amd64",
                &["linux/arm/v7", "linux/amd64", "linux/amd64"]
            )
            .as_deref(),
            Some("linux/amd64")
        );
    }
}
