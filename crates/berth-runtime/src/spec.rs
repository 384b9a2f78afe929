//! Assembles the OCI spec from the pieces, in the order Docker applies its spec options
//! (capabilities before seccomp, which depends on them; mounts after the init).

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::{
    BoxBuilder, Linux, LinuxCapabilities, LinuxSeccomp, Process, Root, Spec, User,
};

use crate::mounts::{self, MountPlan};
use crate::seccomp::{self, Profile, Target};
use crate::security::{self, SeccompChoice};
use crate::{DEFAULT_SHM_SIZE, SpecError, SpecInputs, caps, namespaces, process, resources, user};

/// The OCI runtime-spec version the generated specs follow.
pub const OCI_VERSION: &str = "1.2.0";

/// Docker's masked paths.
pub const DEFAULT_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn none_if_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// The masked or read-only paths: the explicit list if any, none when privileged,
/// Docker's otherwise.
fn system_paths(
    explicit: &Option<Vec<String>>,
    privileged: bool,
    defaults: &[&str],
) -> Option<Vec<String>> {
    let paths = match explicit {
        Some(paths) => paths.clone(),
        None if privileged => Vec::new(),
        None => defaults.iter().map(|p| p.to_string()).collect(),
    };
    none_if_empty(paths)
}

/// Builds the OCI spec Docker would give this container. Pure: everything it needs
/// about the host is in `inputs`.
pub fn generate(inputs: &SpecInputs) -> Result<Spec, SpecError> {
    let host = inputs.host;
    let image = inputs.image.config.clone().unwrap_or_default();
    let security = security::parse(&host.security_opt)?;
    resources::validate(host, &inputs.facts)?;
    let ns = namespaces::plan(host, &inputs.join_namespaces, &inputs.facts)?;

    // The process.
    let mut args = process::command(host, &image)?;
    // Docker adds the init only in a private PID namespace (elsewhere there is one).
    let init_path = match (host.init && ns.pid_private, &inputs.init_path) {
        (false, _) => None,
        (true, Some(path)) => Some(path.as_path()),
        (true, None) => return Err(SpecError::InitNotFound),
    };
    if init_path.is_some() {
        args = process::with_init(args);
    }
    let user_spec = if host.user.is_empty() {
        image.user.clone().unwrap_or_default()
    } else {
        host.user.clone()
    };
    let resolved = user::resolve(&user_spec, &host.group_add, inputs.passwd, inputs.group)?;
    let mut process_user = User::default();
    process_user.set_uid(resolved.uid);
    process_user.set_gid(resolved.gid);
    process_user.set_additional_gids(Some(resolved.additional_gids));

    let cap_names = caps::effective(
        host.privileged,
        &host.cap_add,
        &host.cap_drop,
        inputs.facts.last_cap,
    )?;
    let cap_set = caps::to_set(&cap_names)?;
    let mut capabilities = LinuxCapabilities::default();
    capabilities.set_bounding(Some(cap_set.clone()));
    capabilities.set_effective(Some(cap_set.clone()));
    capabilities.set_permitted(Some(cap_set));
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);

    // oci-spec's `Default`s are youki's example config, not Docker's: every field of
    // the process, `linux` and the spec itself is set explicitly below.
    let mut proc = Process::default();
    proc.set_terminal(host.tty.then_some(true));
    proc.set_console_size(match host.console_size {
        Some((height, width)) if host.tty && (height > 0 || width > 0) => {
            Some(BoxBuilder::default().height(height).width(width).build()?)
        }
        _ => None,
    });
    proc.set_user(process_user);
    proc.set_args(Some(args));
    proc.set_command_line(None);
    proc.set_env(Some(process::environment(host, &image)));
    proc.set_cwd(PathBuf::from(process::working_dir(host, &image)?));
    proc.set_capabilities(Some(capabilities));
    proc.set_rlimits(none_if_empty(process::rlimits(&host.ulimits)?));
    proc.set_no_new_privileges(security.no_new_privileges.then_some(true));
    proc.set_apparmor_profile(None);
    proc.set_oom_score_adj(Some(host.oom_score_adj));
    proc.set_selinux_label(None);
    proc.set_io_priority(None);
    proc.set_scheduler(None);
    proc.set_exec_cpu_affinity(None);

    // Seccomp: none for privileged containers, else by --security-opt.
    let seccomp: Option<LinuxSeccomp> = if host.privileged {
        None
    } else {
        let target = Target {
            arch: &inputs.facts.arch,
            bounding_caps: &cap_names,
            kernel: inputs.facts.kernel,
        };
        match &security.seccomp {
            SeccompChoice::Unconfined => None,
            SeccompChoice::Default => seccomp::convert(&Profile::default_profile()?, &target)?,
            SeccompChoice::Custom(json) => seccomp::convert(&Profile::parse(json)?, &target)?,
        }
    };

    let shm_size = if host.shm_size == 0 {
        DEFAULT_SHM_SIZE
    } else {
        host.shm_size
    };
    let mounts = mounts::mounts(&MountPlan {
        shm: ns.shm.with_size(shm_size),
        etc_files: &inputs.etc_files,
        tmpfs: &host.tmpfs,
        init: init_path,
        read_only_rootfs: host.read_only_rootfs,
        privileged: host.privileged,
        writable_cgroups: security.writable_cgroups,
    })?;

    let (devices, device_rules) = resources::devices(host, inputs.host_devices)?;
    let sysctls: HashMap<String, String> = namespaces::sysctls(host, &ns)?.into_iter().collect();

    let mut linux = Linux::default();
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_sysctl((!sysctls.is_empty()).then_some(sysctls));
    linux.set_resources(Some(resources::resources(host, device_rules)));
    linux.set_cgroups_path(inputs.cgroups_path.clone());
    linux.set_namespaces(Some(ns.namespaces));
    linux.set_devices(Some(devices));
    linux.set_seccomp(seccomp);
    linux.set_rootfs_propagation(None);
    linux.set_masked_paths(system_paths(
        &host.masked_paths,
        host.privileged,
        &DEFAULT_MASKED_PATHS,
    ));
    linux.set_readonly_paths(system_paths(
        &host.readonly_paths,
        host.privileged,
        &DEFAULT_READONLY_PATHS,
    ));
    linux.set_mount_label(None);
    linux.set_intel_rdt(None);
    linux.set_personality(None);

    let mut root = Root::default();
    root.set_path(inputs.rootfs.clone());
    root.set_readonly(host.read_only_rootfs.then_some(true));

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_string());
    spec.set_root(Some(root));
    spec.set_mounts(Some(mounts));
    spec.set_process(Some(proc));
    // No hostname in the host's UTS namespace: the runtime could not set it.
    spec.set_hostname((ns.uts_private && !host.hostname.is_empty()).then(|| host.hostname.clone()));
    spec.set_domainname(None);
    spec.set_hooks(None);
    spec.set_annotations(None);
    spec.set_linux(Some(linux));
    Ok(spec)
}

#[cfg(test)]
mod tests;
