//! Seccomp: Docker's profile format (`profiles/seccomp`), the default profile, and its
//! conversion to the OCI `LinuxSeccomp` for one container. The conversion filters the
//! rules as Docker does: by the native architecture, by the container's bounding
//! capabilities, and by the kernel version.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use crate::{KernelVersion, SpecError};

/// Docker's default profile, written out in Docker's profile format (allow-list rules
/// grouped by topic; the conditional rules follow moby's `default.json`).
pub const DEFAULT_PROFILE_JSON: &str = include_str!("default.json");

/// A seccomp profile in Docker's JSON format (what `--security-opt seccomp=FILE` sends).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default)]
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub listener_path: Option<String>,
    #[serde(default)]
    pub listener_metadata: Option<String>,
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    #[serde(default)]
    pub arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    pub syscalls: Option<Vec<Syscall>>,
    #[serde(default)]
    pub flags: Option<Vec<String>>,
}

/// A native architecture and the others its kernel runs (`x86_64` also runs `x86`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

/// One rule: the syscalls, the action, argument matches and when it applies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Syscall {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub names: Option<Vec<String>>,
    pub action: String,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Option<Vec<Arg>>,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub includes: Filter,
    #[serde(default)]
    pub excludes: Filter,
}

/// When a rule applies (`includes`) or does not (`excludes`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default)]
    pub caps: Option<Vec<String>>,
    #[serde(default)]
    pub arches: Option<Vec<String>>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// An argument match.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: usize,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

impl Profile {
    /// Parses a profile in Docker's format, with Docker's error message.
    pub fn parse(json: &str) -> Result<Profile, SpecError> {
        serde_json::from_str(json).map_err(|e| SpecError::SeccompDecode(e.to_string()))
    }

    /// The built-in default profile. It is checked by the tests, but a failure is still
    /// an error here rather than an empty (allow-everything) profile.
    pub fn default_profile() -> Result<Profile, SpecError> {
        Profile::parse(DEFAULT_PROFILE_JSON)
    }
}

/// What the conversion depends on, besides the profile.
pub struct Target<'a> {
    /// The native architecture in libseccomp's naming (`amd64`, `arm64`, …).
    pub arch: &'a str,
    /// The container's bounding capabilities (`CAP_…`).
    pub bounding_caps: &'a [String],
    /// The running kernel; unknown makes `minKernel` includes fail closed (and excludes
    /// not apply).
    pub kernel: Option<KernelVersion>,
}

/// The seccomp architecture constant for a native architecture name.
fn seccomp_arch(native: &str) -> Option<&'static str> {
    Some(match native {
        "x86" => "SCMP_ARCH_X86",
        "amd64" => "SCMP_ARCH_X86_64",
        "x32" => "SCMP_ARCH_X32",
        "arm" => "SCMP_ARCH_ARM",
        "arm64" => "SCMP_ARCH_AARCH64",
        "mips" => "SCMP_ARCH_MIPS",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64n32" => "SCMP_ARCH_MIPS64N32",
        "mipsel" => "SCMP_ARCH_MIPSEL",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mipsel64n32" => "SCMP_ARCH_MIPSEL64N32",
        "ppc" => "SCMP_ARCH_PPC",
        "ppc64" => "SCMP_ARCH_PPC64",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390" => "SCMP_ARCH_S390",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => return None,
    })
}

/// Parses one of the OCI enums from its JSON spelling (`SCMP_ACT_ALLOW`, …).
fn enum_value<T: DeserializeOwned>(what: &str, value: &str) -> Result<T, SpecError> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| SpecError::SeccompDecode(format!("unknown {what} {value:?}")))
}

fn kernel_at_least(kernel: Option<KernelVersion>, min: &str) -> Result<bool, SpecError> {
    let min = KernelVersion::parse(min)
        .ok_or_else(|| SpecError::SeccompProfile(format!("invalid kernel version {min:?}")))?;
    Ok(kernel.is_some_and(|k| k >= min))
}

/// Whether a rule applies to this container (Docker's `setupSeccomp` filter).
fn applies(rule: &Syscall, target: &Target) -> Result<bool, SpecError> {
    let has_cap = |c: &String| target.bounding_caps.contains(c);
    let ex = &rule.excludes;
    if ex
        .arches
        .as_ref()
        .is_some_and(|a| a.iter().any(|a| a == target.arch))
    {
        return Ok(false);
    }
    if ex.caps.as_ref().is_some_and(|c| c.iter().any(has_cap)) {
        return Ok(false);
    }
    if let Some(min) = ex.min_kernel.as_deref().filter(|m| !m.is_empty())
        && kernel_at_least(target.kernel, min)?
    {
        return Ok(false);
    }
    let inc = &rule.includes;
    if inc
        .arches
        .as_ref()
        .is_some_and(|a| !a.is_empty() && !a.iter().any(|a| a == target.arch))
    {
        return Ok(false);
    }
    if inc.caps.as_ref().is_some_and(|c| !c.iter().all(has_cap)) {
        return Ok(false);
    }
    if let Some(min) = inc.min_kernel.as_deref().filter(|m| !m.is_empty())
        && !kernel_at_least(target.kernel, min)?
    {
        return Ok(false);
    }
    Ok(true)
}

fn convert_rule(rule: &Syscall) -> Result<LinuxSyscall, SpecError> {
    let names = match (rule.name.is_empty(), &rule.names) {
        (false, Some(names)) if !names.is_empty() => {
            return Err(SpecError::SeccompProfile(
                "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'"
                    .to_string(),
            ));
        }
        (false, _) => vec![rule.name.clone()],
        (true, names) => names.clone().unwrap_or_default(),
    };
    let mut builder = LinuxSyscallBuilder::default()
        .names(names)
        .action(enum_value::<LinuxSeccompAction>("action", &rule.action)?);
    if let Some(errno) = rule.errno_ret {
        builder = builder.errno_ret(errno);
    }
    if let Some(args) = &rule.args {
        let args = args
            .iter()
            .map(|a| {
                let mut arg = LinuxSeccompArgBuilder::default()
                    .index(a.index)
                    .value(a.value)
                    .op(enum_value::<LinuxSeccompOperator>("operator", &a.op)?);
                // Docker leaves a zero second value out of the spec (`omitempty`).
                if a.value_two != 0 {
                    arg = arg.value_two(a.value_two);
                }
                Ok(arg.build()?)
            })
            .collect::<Result<Vec<_>, SpecError>>()?;
        builder = builder.args(args);
    }
    Ok(builder.build()?)
}

/// Converts a profile for one container. `Ok(None)` means no filter (a profile with no
/// default action and no rules, as Docker treats it).
pub fn convert(profile: &Profile, target: &Target) -> Result<Option<LinuxSeccomp>, SpecError> {
    let syscalls = profile.syscalls.clone().unwrap_or_default();
    if profile.default_action.is_empty() && syscalls.is_empty() {
        return Ok(None);
    }
    let architectures = profile.architectures.clone().unwrap_or_default();
    let arch_map = profile.arch_map.clone().unwrap_or_default();
    if !architectures.is_empty() && !arch_map.is_empty() {
        return Err(SpecError::SeccompProfile(
            "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'"
                .to_string(),
        ));
    }
    let mut arches: Vec<Arch> = architectures
        .iter()
        .map(|a| enum_value("architecture", a))
        .collect::<Result<_, _>>()?;
    if let Some(native) = seccomp_arch(target.arch)
        && let Some(entry) = arch_map.iter().find(|m| m.architecture == native)
    {
        arches.push(enum_value("architecture", &entry.architecture)?);
        for sub in entry.sub_architectures.iter().flatten() {
            arches.push(enum_value("architecture", sub)?);
        }
    }

    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(enum_value("default action", &profile.default_action)?);
    seccomp.set_default_errno_ret(profile.default_errno_ret);
    seccomp.set_architectures((!arches.is_empty()).then_some(arches));
    let flags = profile
        .flags
        .iter()
        .flatten()
        .map(|f| enum_value::<LinuxSeccompFilterFlag>("flag", f))
        .collect::<Result<Vec<_>, _>>()?;
    seccomp.set_flags((!flags.is_empty()).then_some(flags));
    seccomp.set_listener_path(
        profile
            .listener_path
            .clone()
            .filter(|p| !p.is_empty())
            .map(Into::into),
    );
    seccomp.set_listener_metadata(profile.listener_metadata.clone().filter(|m| !m.is_empty()));

    let mut rules = Vec::new();
    for rule in &syscalls {
        if applies(rule, target)? {
            rules.push(convert_rule(rule)?);
        }
    }
    seccomp.set_syscalls(Some(rules));
    Ok(Some(seccomp))
}

#[cfg(test)]
mod tests;
