use super::*;
use crate::caps::DEFAULT_CAPABILITIES;

fn caps(extra: &[&str]) -> Vec<String> {
    DEFAULT_CAPABILITIES
        .iter()
        .chain(extra)
        .map(|c| c.to_string())
        .collect()
}

fn convert_default(arch: &str, bounding: &[String], kernel: Option<(u32, u32)>) -> LinuxSeccomp {
    let target = Target {
        arch,
        bounding_caps: bounding,
        kernel: kernel.map(|(major, minor)| KernelVersion { major, minor }),
    };
    convert(&Profile::default_profile().unwrap(), &target)
        .unwrap()
        .expect("the default profile filters")
}

/// The syscalls some rule allows, whatever its arguments.
fn allowed(s: &LinuxSeccomp) -> Vec<String> {
    s.syscalls()
        .iter()
        .flatten()
        .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
        .flat_map(|r| r.names().clone())
        .collect()
}

/// The syscalls allowed without any argument condition.
fn allowed_unconditionally(s: &LinuxSeccomp) -> Vec<String> {
    s.syscalls()
        .iter()
        .flatten()
        .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
        .flat_map(|r| r.names().clone())
        .collect()
}

#[test]
fn embedded_profile_parses_and_has_the_allow_list() {
    let profile = Profile::parse(DEFAULT_PROFILE_JSON).unwrap();
    assert_eq!(profile.default_action, "SCMP_ACT_ERRNO");
    assert_eq!(profile.default_errno_ret, Some(1));
    let names: Vec<String> = profile
        .syscalls
        .iter()
        .flatten()
        .filter(|r| r.includes.caps.is_none() && r.includes.arches.is_none())
        .filter(|r| r.includes.min_kernel.is_none() && r.excludes.caps.is_none())
        .filter(|r| r.args.is_none())
        .flat_map(|r| r.names.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names.len(),
        351,
        "the unconditional allow list changed size"
    );
    for n in [
        "read",
        "write",
        "openat",
        "execve",
        "futex",
        "epoll_wait",
        "io_uring_setup",
    ] {
        assert!(names.contains(&n.to_string()), "{n} missing");
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "a syscall is listed twice");
}

#[test]
fn default_refuses_dangerous_syscalls() {
    let s = convert_default("amd64", &caps(&[]), Some((6, 1)));
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(s.default_errno_ret(), Some(1));
    let allowed = allowed(&s);
    for refused in [
        "keyctl",
        "add_key",
        "request_key",
        "unshare",
        "mount",
        "umount2",
        "setns",
        "bpf",
        "reboot",
        "init_module",
        "kexec_load",
        "open_by_handle_at",
        "perf_event_open",
        "userfaultfd",
        "clock_settime",
        "swapon",
        "pivot_root",
        "acct",
        "iopl",
        "syslog",
    ] {
        assert!(
            !allowed.contains(&refused.to_string()),
            "{refused} is allowed"
        );
    }
    // CAP_SYS_CHROOT is a default capability, so chroot is allowed.
    assert!(allowed.contains(&"chroot".to_string()));
}

#[test]
fn clone_is_filtered_by_namespace_flags_without_sys_admin() {
    let s = convert_default("amd64", &caps(&[]), Some((6, 1)));
    assert!(!allowed_unconditionally(&s).contains(&"clone".to_string()));
    let rules: Vec<&LinuxSyscall> = s.syscalls().iter().flatten().collect();
    let clone = rules
        .iter()
        .find(|r| r.names() == &vec!["clone".to_string()])
        .expect("clone rule");
    let arg = clone.args().as_ref().unwrap()[0];
    assert_eq!(arg.index(), 0);
    assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    assert_eq!(arg.value(), 0x7E02_0000);
    assert_eq!(arg.value_two(), None);
    let clone3 = rules
        .iter()
        .find(|r| r.names() == &vec!["clone3".to_string()])
        .expect("clone3 rule");
    assert_eq!(clone3.action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(clone3.errno_ret(), Some(38));
}

#[test]
fn sys_admin_unlocks_mount_unshare_and_any_clone() {
    let s = convert_default("amd64", &caps(&["CAP_SYS_ADMIN"]), Some((6, 1)));
    let free = allowed_unconditionally(&s);
    for n in ["mount", "unshare", "setns", "clone", "clone3"] {
        assert!(free.contains(&n.to_string()), "{n} not allowed");
    }
    let rules: Vec<&LinuxSyscall> = s.syscalls().iter().flatten().collect();
    assert!(
        !rules
            .iter()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActErrno)
    );
    assert!(
        !rules
            .iter()
            .any(|r| r.args().is_some() && r.names()[0] == "clone")
    );
}

#[test]
fn ptrace_needs_kernel_4_8_or_cap_sys_ptrace() {
    let has_ptrace = |s: &LinuxSeccomp| allowed(s).contains(&"ptrace".to_string());
    assert!(has_ptrace(&convert_default(
        "amd64",
        &caps(&[]),
        Some((4, 8))
    )));
    assert!(has_ptrace(&convert_default(
        "amd64",
        &caps(&[]),
        Some((6, 1))
    )));
    assert!(!has_ptrace(&convert_default(
        "amd64",
        &caps(&[]),
        Some((4, 4))
    )));
    assert!(!has_ptrace(&convert_default("amd64", &caps(&[]), None)));
    assert!(has_ptrace(&convert_default(
        "amd64",
        &caps(&["CAP_SYS_PTRACE"]),
        Some((4, 4))
    )));
}

#[test]
fn personality_is_allowed_for_the_usual_personas_only() {
    let s = convert_default("amd64", &caps(&[]), Some((6, 1)));
    let values: Vec<u64> = s
        .syscalls()
        .iter()
        .flatten()
        .filter(|r| r.names() == &vec!["personality".to_string()])
        .map(|r| {
            let arg = r.args().as_ref().unwrap()[0];
            assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpEq);
            arg.value()
        })
        .collect();
    assert_eq!(values, vec![0, 8, 0x20000, 0x20008, 0xffff_ffff]);
}

#[test]
fn architectures_follow_the_native_one() {
    let x86 = convert_default("amd64", &caps(&[]), Some((6, 1)));
    assert_eq!(
        x86.architectures().clone().unwrap(),
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    );
    let allowed_x86 = allowed(&x86);
    assert!(allowed_x86.contains(&"arch_prctl".to_string()));
    assert!(allowed_x86.contains(&"modify_ldt".to_string()));
    assert!(!allowed_x86.contains(&"cacheflush".to_string()));

    let arm = convert_default("arm64", &caps(&[]), Some((6, 1)));
    assert_eq!(
        arm.architectures().clone().unwrap(),
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    );
    let allowed_arm = allowed(&arm);
    assert!(allowed_arm.contains(&"cacheflush".to_string()));
    assert!(!allowed_arm.contains(&"arch_prctl".to_string()));

    let s390 = convert_default("s390x", &caps(&[]), Some((6, 1)));
    let clone = s390
        .syscalls()
        .iter()
        .flatten()
        .find(|r| r.names() == &vec!["clone".to_string()])
        .unwrap();
    assert_eq!(clone.args().as_ref().unwrap()[0].index(), 1);
}

#[test]
fn custom_profiles_in_dockers_format() {
    let profile = Profile::parse(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "flags":["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13},
                        {"names":["chmod"],"action":"SCMP_ACT_LOG","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#,
    )
    .unwrap();
    let target = Target {
        arch: "amd64",
        bounding_caps: &caps(&[]),
        kernel: None,
    };
    let s = convert(&profile, &target).unwrap().unwrap();
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
    assert_eq!(
        s.architectures().clone().unwrap(),
        vec![Arch::ScmpArchX86_64]
    );
    assert_eq!(
        s.flags().clone().unwrap(),
        vec![LinuxSeccompFilterFlag::SeccompFilterFlagLog]
    );
    let rules = s.syscalls().clone().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].names(), &vec!["mkdir".to_string()]);
    assert_eq!(rules[0].errno_ret(), Some(13));
}

#[test]
fn bad_profiles_fail_with_dockers_messages() {
    let target = Target {
        arch: "amd64",
        bounding_caps: &[],
        kernel: None,
    };
    let err = Profile::parse("{not json").unwrap_err().to_string();
    assert!(
        err.starts_with("Decoding seccomp profile failed: "),
        "{err}"
    );
    let both = Profile::parse(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
            "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":null}]}"#,
    )
    .unwrap();
    assert!(
        convert(&both, &target)
            .unwrap_err()
            .to_string()
            .starts_with("'architectures' and 'archMap' were specified")
    );
    let names = Profile::parse(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    assert!(
        convert(&names, &target)
            .unwrap_err()
            .to_string()
            .starts_with("'name' and 'names' were specified")
    );
    let action = Profile::parse(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["a"],"action":"SCMP_ACT_MAYBE"}]}"#,
    )
    .unwrap();
    assert!(convert(&action, &target).is_err());
    let empty = Profile::parse("{}").unwrap();
    assert!(convert(&empty, &target).unwrap().is_none());
}
