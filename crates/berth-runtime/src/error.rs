//! Why a spec could not be generated. The messages are Docker's (dockerd's, runc's or the
//! docker CLI's) where a client may show or match them, so they keep Docker's wording.

use thiserror::Error;

/// An error from [`crate::generate`]. Everything but [`SpecError::Oci`] is a problem with
/// the request (Docker answers those with 400 or 500 and the same text).
#[derive(Debug, Error)]
pub enum SpecError {
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),

    #[error(
        "capability not supported by your kernel or not available in the current environment: {0:?}"
    )]
    UnsupportedCapability(String),

    #[error("unable to find user {0}: no matching entries in passwd file")]
    UserNotFound(String),

    #[error("unable to find group {0}: no matching entries in group file")]
    GroupNotFound(String),

    #[error("uids and gids must be in range 0-2147483647")]
    IdOutOfRange,

    #[error("No command specified")]
    NoCommand,

    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    RelativeWorkingDir(String),

    /// A `--security-opt` that is neither a known flag nor `key=value`.
    #[error("invalid --security-opt 1: {0:?}")]
    SecurityOptFormat(String),

    /// A `--security-opt key=value` with an unknown key or a bad value.
    #[error("invalid --security-opt 2: {0:?}")]
    SecurityOpt(String),

    #[error("Decoding seccomp profile failed: {0}")]
    SeccompDecode(String),

    #[error("{0}")]
    SeccompProfile(String),

    #[error("sysctl '{0}' is not allowed")]
    SysctlNotAllowed(String),

    #[error("sysctl {name:?} is not allowed in the hosts {namespace} namespace")]
    SysctlHostNamespace {
        name: String,
        namespace: &'static str,
    },

    #[error("invalid tmpfs option {0}")]
    TmpfsOption(String),

    #[error(
        "invalid mount config for type \"tmpfs\": invalid mount path: '{0}' mount path must be absolute"
    )]
    TmpfsPath(String),

    #[error(
        "error gathering device information while adding custom device {0:?}: no such file or directory"
    )]
    DeviceNotFound(String),

    #[error("{path} invalid device mode: {mode}")]
    DeviceMode { path: String, mode: String },

    #[error("invalid device cgroup rule format: '{0}'")]
    DeviceCgroupRule(String),

    #[error("invalid ulimit type: {0}")]
    UlimitType(String),

    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    UlimitRange { soft: i64, hard: i64 },

    /// An unknown namespace mode (`kind` is Docker's word: PID, IPC, UTS, …).
    #[error("invalid {kind} mode: {mode}")]
    NamespaceMode { kind: &'static str, mode: String },

    /// A `container:<id>` mode without the path of the namespace to join.
    #[error("{kind} mode {mode:?} needs the path of the namespace to join")]
    NamespacePathMissing { kind: &'static str, mode: String },

    #[error("exec: \"docker-init\": executable file not found in $PATH")]
    InitNotFound,

    /// A resource setting Docker refuses, with Docker's message.
    #[error("{0}")]
    Resource(String),

    #[error("building the OCI spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
}
