use std::path::Path;

use anyhow::Context;

use crate::cli::{ListFormat, Ps};

/// The container's processes: their PIDs as JSON, or `ps` output limited to them.
pub fn ps(root: &Path, args: &Ps) -> anyhow::Result<()> {
    let container = crate::state::load(root, &args.id)?;
    let cgroup = container.spec().ok().map(|spec| spec.cgroup_path);
    let pids = cgroup_pids(
        cgroup.as_deref().unwrap_or(Path::new("")),
        container.pid().map(|p| p.as_raw()),
    )?;
    match args.format {
        ListFormat::Json => {
            println!("{}", serde_json::to_string(&pids)?);
        }
        ListFormat::Table => {
            let ps_args: Vec<String> = if args.ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                args.ps_args.clone()
            };
            let out = std::process::Command::new("ps")
                .args(&ps_args)
                .output()
                .context("run ps")?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let pid_column = header
                .split_whitespace()
                .position(|c| c == "PID")
                .context("ps output has no PID column")?;
            println!("{header}");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(pid_column)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    println!("{line}");
                }
            }
        }
    }
    Ok(())
}

/// PIDs in the container's cgroup (any v1 hierarchy, or the unified one).
fn cgroup_pids(cgroup: &Path, init: Option<i32>) -> anyhow::Result<Vec<i32>> {
    let relative = cgroup.strip_prefix("/").unwrap_or(cgroup);
    let candidates = [
        Path::new("/sys/fs/cgroup")
            .join(relative)
            .join("cgroup.procs"),
        Path::new("/sys/fs/cgroup/pids")
            .join(relative)
            .join("cgroup.procs"),
        Path::new("/sys/fs/cgroup/memory")
            .join(relative)
            .join("cgroup.procs"),
    ];
    for file in candidates {
        if let Ok(text) = std::fs::read_to_string(&file)
            && !relative.as_os_str().is_empty()
        {
            return Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect());
        }
    }
    Ok(init.into_iter().collect())
}
