//! Golden tests: the spec generated for representative `docker run` invocations, compared
//! byte for byte with the reviewed files in `tests/golden/`. After an intended change,
//! regenerate them with `BERTH_UPDATE_GOLDEN=1 cargo nextest run -p berth-runtime` and
//! review the diff against Docker's behaviour before committing.

use std::path::{Path, PathBuf};

use berth_image::config::ImageConfig;
use berth_runtime::{
    DeviceKind, DeviceMapping, EtcFiles, HostConfig, HostDevice, HostFacts, KernelVersion,
    SpecInputs, Ulimit, generate,
};
use serde_json::Value;

const ID: &str = "c0ffee123456";

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/busybox")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn busybox() -> ImageConfig {
    serde_json::from_str(&fixture("config.json")).unwrap()
}

fn container_dir(file: &str) -> PathBuf {
    PathBuf::from(format!("/var/lib/berth/containers/{ID}/{file}"))
}

/// A few host device nodes, for `--privileged` and `--device`.
fn host_devices() -> Vec<HostDevice> {
    let dev = |path: &str, kind, major, minor, file_mode, gid| HostDevice {
        path: PathBuf::from(path),
        kind,
        major,
        minor,
        file_mode,
        uid: 0,
        gid,
    };
    vec![
        dev("/dev/null", DeviceKind::Char, 1, 3, 0o666, 0),
        dev("/dev/zero", DeviceKind::Char, 1, 5, 0o666, 0),
        dev("/dev/fuse", DeviceKind::Char, 10, 229, 0o666, 0),
        dev("/dev/kmsg", DeviceKind::Char, 1, 11, 0o644, 0),
        dev("/dev/sda", DeviceKind::Block, 8, 0, 0o660, 6),
    ]
}

/// Canonical JSON: object keys sorted (the spec holds hash maps and sets), the
/// capability sets sorted, two-space indentation and a final newline.
fn canonical(value: Value) -> String {
    fn sort(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sort).collect()),
            other => other,
        }
    }
    let mut value = sort(value);
    if let Some(Value::Object(caps)) = value.pointer_mut("/process/capabilities") {
        for set in caps.values_mut() {
            if let Value::Array(items) = set {
                items.sort_by_key(|v| v.as_str().unwrap_or_default().to_string());
            }
        }
    }
    let mut text = String::new();
    write_json(&mut text, &value, 0, 0);
    text.push('\n');
    text
}

/// One line of JSON with a space after `:` and `,`.
fn flat(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(flat).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", serde_json::to_string(k).unwrap(), flat(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        scalar => serde_json::to_string(scalar).unwrap(),
    }
}

/// Pretty JSON that stays reviewable: objects and arrays that fit on their line stay on
/// it, lists of scalars (syscall names, options) wrap like prose. `column` is where the
/// value starts.
fn write_json(out: &mut String, value: &Value, indent: usize, column: usize) {
    const WIDTH: usize = 100;
    let pad = |n: usize| "  ".repeat(n);
    let one_line = flat(value);
    let scalar = |v: &Value| !v.is_object() && !v.is_array();
    if column + one_line.len() < WIDTH || scalar(value) {
        out.push_str(&one_line);
        return;
    }
    match value {
        Value::Array(items) if items.iter().all(scalar) => {
            out.push_str("[\n");
            let mut line = String::new();
            for (i, item) in items.iter().enumerate() {
                let mut word = flat(item);
                if i + 1 < items.len() {
                    word.push(',');
                }
                if !line.is_empty() && pad(indent + 1).len() + line.len() + 1 + word.len() > WIDTH {
                    out.push_str(&format!("{}{line}\n", pad(indent + 1)));
                    line.clear();
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(&word);
            }
            out.push_str(&format!("{}{line}\n{}]", pad(indent + 1), pad(indent)));
        }
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                write_json(out, item, indent + 1, (indent + 1) * 2);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("{\n");
            for (i, (key, item)) in map.iter().enumerate() {
                let key = format!(
                    "{}{}: ",
                    pad(indent + 1),
                    serde_json::to_string(key).unwrap()
                );
                out.push_str(&key);
                write_json(out, item, indent + 1, key.len());
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push('}');
        }
        _ => unreachable!("scalars are written flat"),
    }
}

/// Generates the spec for busybox with `configure` applied, and compares it with
/// `tests/golden/<name>.json`.
fn golden(name: &str, configure: impl FnOnce(&mut HostConfig)) {
    let image = busybox();
    let mut host = HostConfig {
        hostname: ID.to_string(),
        network_mode: "bridge".to_string(),
        ..Default::default()
    };
    configure(&mut host);
    let passwd = fixture("passwd");
    let group = fixture("group");
    let devices = host_devices();
    let mut inputs = SpecInputs::new(&image, &host, container_dir("rootfs"));
    inputs.etc_files = EtcFiles {
        hostname: Some(container_dir("hostname")),
        hosts: Some(container_dir("hosts")),
        resolv_conf: Some(container_dir("resolv.conf")),
    };
    inputs.passwd = Some(&passwd);
    inputs.group = Some(&group);
    inputs.init_path = Some(PathBuf::from("/usr/libexec/berth/docker-init"));
    inputs.host_devices = &devices;
    inputs.cgroups_path = Some(PathBuf::from(format!("/berth/{ID}")));
    inputs.facts = HostFacts {
        arch: "amd64".to_string(),
        kernel: Some(KernelVersion { major: 6, minor: 1 }),
        cgroup_v2: true,
        last_cap: 40,
        num_cpus: Some(2),
    };

    let spec = generate(&inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
    let actual = canonical(serde_json::to_value(&spec).unwrap());
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    if std::env::var_os("BERTH_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with BERTH_UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if actual != expected {
        let line = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
        panic!(
            "{name}: the generated spec differs from {} from line {}:\n  expected: {}\n  actual:   {}\n\
             (BERTH_UPDATE_GOLDEN=1 regenerates it; review the diff against Docker first)",
            path.display(),
            line + 1,
            expected.lines().nth(line).unwrap_or("<end>"),
            actual.lines().nth(line).unwrap_or("<end>"),
        );
    }
    // The golden file is a spec runtimes accept: it parses back into the same value.
    let reparsed: oci_spec::runtime::Spec = serde_json::from_str(&expected).unwrap();
    assert_eq!(reparsed, spec);
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn busybox_defaults() {
    golden("busybox_defaults", |_| {});
}

#[test]
fn user_nobody() {
    golden("user_nobody", |h| h.user = "nobody".into());
}

#[test]
fn privileged() {
    golden("privileged", |h| h.privileged = true);
}

#[test]
fn cap_drop_all_add_net_admin() {
    golden("cap_drop_all_add_net_admin", |h| {
        h.cap_drop = strings(&["ALL"]);
        h.cap_add = strings(&["NET_ADMIN"]);
    });
}

#[test]
fn read_only_with_tmpfs() {
    golden("read_only_tmpfs", |h| {
        h.read_only_rootfs = true;
        h.tmpfs.insert("/run".into(), "size=1m".into());
    });
}

#[test]
fn host_pid_and_network() {
    golden("host_pid_network", |h| {
        h.pid_mode = "host".into();
        h.network_mode = "host".into();
    });
}

#[test]
fn init() {
    golden("init", |h| h.init = true);
}

#[test]
fn resource_limits() {
    golden("resource_limits", |h| {
        h.memory = 64 * 1024 * 1024;
        h.memory_reservation = 32 * 1024 * 1024;
        h.nano_cpus = 1_500_000_000;
        h.cpu_shares = 512;
        h.cpuset_cpus = "0".into();
        h.pids_limit = Some(100);
        h.blkio_weight = 300;
        h.oom_score_adj = 100;
        h.shm_size = 128 * 1024 * 1024;
        h.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048,
        }];
    });
}

#[test]
fn seccomp_unconfined_no_new_privileges() {
    golden("seccomp_unconfined_nnp", |h| {
        h.security_opt = strings(&["seccomp=unconfined", "no-new-privileges"]);
    });
}

#[test]
fn interactive_with_env_workdir_and_sysctls() {
    golden("interactive", |h| {
        h.tty = true;
        h.console_size = Some((24, 80));
        h.env = strings(&["FOO=bar", "PATH=/opt/bin:/bin"]);
        h.working_dir = "/tmp".into();
        h.domainname = "example.org".into();
        h.sysctls.insert("net.core.somaxconn".into(), "1024".into());
        h.group_add = strings(&["audio"]);
        h.entrypoint = Some(strings(&["/bin/sh", "-c"]));
        h.cmd = strings(&["echo hi"]);
    });
}

#[test]
fn device_mapping() {
    golden("device_fuse", |h| {
        h.devices = vec![DeviceMapping {
            path_on_host: "/dev/fuse".into(),
            path_in_container: String::new(),
            cgroup_permissions: "rwm".into(),
        }];
        h.cap_add = strings(&["SYS_ADMIN"]);
    });
}
