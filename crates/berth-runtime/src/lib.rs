//! The container runtime's pure core: an image config and Docker's per-container
//! settings in, the OCI runtime spec Docker would produce out (moby `oci/defaults.go`,
//! `daemon/oci_linux.go`, `profiles/seccomp`). No syscalls: everything the generator
//! must know about the host comes in [`SpecInputs`], so it is golden-tested byte for
//! byte (`tests/golden/`).
//!
//! One module does touch the host: [`cgroupfs`], the cgroup directories of a container
//! (located from the mount table, created, removed), shared by berth-runtime's launcher
//! and the shim.
//!
//! ```no_run
//! # use berth_runtime::{HostConfig, SpecInputs};
//! # let image = berth_image::config::ImageConfig::default();
//! let host = HostConfig { cmd: vec!["sh".into()], ..Default::default() };
//! let inputs = SpecInputs::new(&image, &host, "/run/berth/c1/rootfs");
//! let spec = berth_runtime::generate(&inputs)?;
//! # Ok::<(), berth_runtime::SpecError>(())
//! ```

mod caps;
pub mod cgroupfs;
mod error;
mod host;
mod inputs;
mod mounts;
mod namespaces;
mod process;
mod resources;
mod seccomp;
mod security;
mod spec;
mod user;

pub use caps::{ALL_CAPABILITIES, DEFAULT_CAPABILITIES};
pub use error::SpecError;
pub use host::{detect_host_facts, own_cgroup_procs, scan_devices};
pub use inputs::{
    DEFAULT_SHM_SIZE, DeviceKind, DeviceMapping, EtcFiles, HostConfig, HostDevice, HostFacts,
    KernelVersion, SpecInputs, Ulimit, native_arch,
};
pub use process::{DEFAULT_PATH_ENV, INIT_PATH_IN_CONTAINER};
pub use seccomp::{DEFAULT_PROFILE_JSON, Profile as SeccompProfile};
pub use spec::{DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, OCI_VERSION, generate};
pub use user::{ResolvedUser, home_dir, resolve as resolve_user};
