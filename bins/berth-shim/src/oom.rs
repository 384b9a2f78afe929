//! Whether the kernel's OOM killer struck inside a container's cgroup, read from the
//! cgroup files before the runtime removes them. The cgroupfs root is a parameter so
//! the v1 and v2 layouts are tested against fake trees.

use std::path::Path;

/// `cgroups_path` is the spec's `linux.cgroupsPath` (e.g. `/berth/<id>`).
pub fn oom_killed(cgroupfs: &Path, cgroups_path: &str) -> bool {
    let relative = cgroups_path.trim_start_matches('/');
    let unified = cgroupfs.join("cgroup.controllers").exists();
    let (file, key) = if unified {
        (cgroupfs.join(relative).join("memory.events"), "oom_kill")
    } else {
        (
            cgroupfs
                .join("memory")
                .join(relative)
                .join("memory.oom_control"),
            "oom_kill",
        )
    };
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| counter(&text, key))
        .is_some_and(|n| n > 0)
}

fn counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_reads_memory_events() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let dir = root.path().join("berth/c1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert!(oom_killed(root.path(), "/berth/c1"));
        std::fs::write(dir.join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
        assert!(!oom_killed(root.path(), "/berth/c1"));
        assert!(!oom_killed(root.path(), "/berth/missing"));
    }

    #[test]
    fn v1_reads_oom_control() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("memory/berth/c1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert!(oom_killed(root.path(), "berth/c1"));
    }
}
