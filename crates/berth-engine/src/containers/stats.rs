//! `GET /containers/{id}/stats` and `GET /containers/{id}/top`: dockerd's statistics
//! objects sampled from the container's cgroup once a second, and the host's `ps` output
//! filtered to the container's processes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::ContainerTopResponse;
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

use super::cgroups::{self, Cgroup};
use super::record::{Status, ZERO_TIME};
use super::{Container, ContainerService};
use crate::error::{EngineError, Result};

/// How often a stream samples, as dockerd's stats collector does.
const INTERVAL: Duration = Duration::from_secs(1);

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero32(v: &u32) -> bool {
    *v == 0
}

/// dockerd's `container.StatsResponse` (API 1.47 field order).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsResponse {
    pub read: String,
    pub preread: String,
    pub pids_stats: PidsStats,
    pub blkio_stats: BlkioStats,
    pub num_procs: u32,
    pub storage_stats: StorageStats,
    pub cpu_stats: CpuStats,
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
}

impl StatsResponse {
    /// What dockerd sends for a container that is not running: zeros, name and ID.
    pub fn empty(name: &str, id: &str) -> StatsResponse {
        StatsResponse {
            read: ZERO_TIME.into(),
            preread: ZERO_TIME.into(),
            pids_stats: PidsStats::default(),
            blkio_stats: BlkioStats::default(),
            num_procs: 0,
            storage_stats: StorageStats::default(),
            cpu_stats: CpuStats::default(),
            precpu_stats: CpuStats::default(),
            memory_stats: MemoryStats::default(),
            name: name.into(),
            id: id.into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BlkioStatEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// Go's nil slices: `null` until there is something.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_serviced_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_queue_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_service_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_wait_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_merged_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub sectors_recursive: Option<Vec<BlkioStatEntry>>,
}

/// Windows only: always `{}` here.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StorageStats {}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CpuUsage {
    pub total_usage: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_usage: Vec<u64>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ThrottlingData {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    #[serde(skip_serializing_if = "is_zero")]
    pub system_cpu_usage: u64,
    #[serde(skip_serializing_if = "is_zero32")]
    pub online_cpus: u32,
    pub throttling_data: ThrottlingData,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_usage: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "is_zero")]
    pub failcnt: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// The `memory.stat` keys dockerd reports on cgroup v1 (through containerd's metrics).
const V1_MEMORY_KEYS: &[&str] = &[
    "cache",
    "rss",
    "rss_huge",
    "mapped_file",
    "dirty",
    "writeback",
    "pgpgin",
    "pgpgout",
    "pgfault",
    "pgmajfault",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "total_cache",
    "total_rss",
    "total_rss_huge",
    "total_mapped_file",
    "total_dirty",
    "total_writeback",
    "total_pgpgin",
    "total_pgpgout",
    "total_pgfault",
    "total_pgmajfault",
    "total_inactive_anon",
    "total_active_anon",
    "total_inactive_file",
    "total_active_file",
    "total_unevictable",
];

/// The `memory.stat` keys dockerd reports on cgroup v2.
const V2_MEMORY_KEYS: &[&str] = &[
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
];

/// Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction dropped.
fn go_time(t: chrono::DateTime<chrono::Utc>) -> String {
    let text = t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}Z")
}

/// The host's CPU time in nanoseconds and its number of CPUs, from `/proc/stat` (dockerd's
/// `getSystemCPUUsage`).
pub fn system_cpu_usage(proc_stat: &str) -> (u64, u32) {
    let mut usage = 0;
    let mut cpus = 0;
    for line in proc_stat.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = parts.first() else { continue };
        if *first == "cpu" && parts.len() >= 8 {
            let ticks: u64 = parts[1..8]
                .iter()
                .filter_map(|v| v.parse::<u64>().ok())
                .sum();
            usage = ticks * 1_000_000_000 / 100;
        }
        if first.len() > 3 && first.starts_with("cpu") {
            cpus += 1;
        }
    }
    (usage, cpus)
}

/// `MemTotal` in bytes.
fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let rest = l.strip_prefix("MemTotal:")?;
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// One sample as dockerd builds it from cgroup statistics (`statsV1`/`statsV2`), with
/// the host's CPU time. `None` when the cgroup is gone.
pub fn from_cgroup(
    stats: &cgroups::Stats,
    v2: bool,
    system: (u64, u32),
    machine_memory: u64,
) -> Option<StatsResponse> {
    if stats.memory.is_none() && stats.cpu.is_none() && stats.pids.is_none() {
        return None;
    }
    let mut out = StatsResponse::empty("", "");
    out.read = go_time(chrono::Utc::now());
    if let Some(cpu) = &stats.cpu {
        out.cpu_stats.cpu_usage = CpuUsage {
            total_usage: cpu.total,
            percpu_usage: cpu.percpu.clone(),
            usage_in_kernelmode: cpu.kernel,
            usage_in_usermode: cpu.user,
        };
        out.cpu_stats.throttling_data = ThrottlingData {
            periods: cpu.periods,
            throttled_periods: cpu.throttled_periods,
            throttled_time: cpu.throttled_time,
        };
    }
    out.cpu_stats.system_cpu_usage = system.0;
    out.cpu_stats.online_cpus = system.1;
    if let Some(mem) = &stats.memory {
        let keys = if v2 { V2_MEMORY_KEYS } else { V1_MEMORY_KEYS };
        let limit = if machine_memory > 0 && mem.limit > machine_memory {
            machine_memory
        } else {
            mem.limit
        };
        out.memory_stats = MemoryStats {
            usage: mem.usage,
            // cgroup v2 has no peak usage in dockerd's statistics.
            max_usage: if v2 { 0 } else { mem.max_usage },
            stats: keys
                .iter()
                .map(|k| (k.to_string(), mem.stats.get(*k).copied().unwrap_or(0)))
                .collect(),
            failcnt: mem.failcnt,
            limit,
        };
    }
    if let Some(pids) = &stats.pids {
        out.pids_stats = PidsStats {
            current: pids.current,
            // v1 reads `max` as 0 (omitted), v2 as the largest number.
            limit: pids.limit.unwrap_or(if v2 { u64::MAX } else { 0 }),
        };
    }
    if let Some(blkio) = &stats.blkio {
        let entries = |list: &[cgroups::BlkioEntry]| -> Vec<BlkioStatEntry> {
            list.iter()
                .map(|e| BlkioStatEntry {
                    major: e.major,
                    minor: e.minor,
                    op: e.op.clone(),
                    value: e.value,
                })
                .collect()
        };
        if v2 {
            // Appended to a nil slice: `null` when the device list is empty.
            let bytes = entries(&blkio.service_bytes);
            out.blkio_stats.io_service_bytes_recursive = (!bytes.is_empty()).then_some(bytes);
        } else {
            // dockerd copies all eight v1 lists into made slices: `[]` when empty.
            let b = &mut out.blkio_stats;
            b.io_service_bytes_recursive = Some(entries(&blkio.service_bytes));
            b.io_serviced_recursive = Some(entries(&blkio.serviced));
            for list in [
                &mut b.io_queue_recursive,
                &mut b.io_service_time_recursive,
                &mut b.io_wait_time_recursive,
                &mut b.io_merged_recursive,
                &mut b.io_time_recursive,
                &mut b.sectors_recursive,
            ] {
                *list = Some(Vec::new());
            }
        }
    }
    Some(out)
}

fn line(stats: &StatsResponse) -> Bytes {
    let mut bytes = serde_json::to_vec(stats).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn is_up(c: &Container) -> bool {
    c.record().state.status.is_live()
}

impl ContainerService {
    /// The container's cgroup (its `linux.cgroupsPath` under the cgroupfs).
    pub fn cgroup(&self, c: &Container) -> Cgroup {
        Cgroup::new(&self.paths.cgroupfs, &format!("/berth/{}", c.id))
    }

    /// `GET /containers/{id}/stats`: JSON objects, one a line. Streaming sends one a
    /// second (each with the previous sample as `precpu_stats`) until the container
    /// stops; otherwise one object, primed with an earlier sample unless `one_shot`.
    pub fn stats(
        self: &Arc<Self>,
        name: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<mpsc::Receiver<Bytes>> {
        if stream && one_shot {
            return Err(EngineError::invalid(
                "cannot have stream=true and one-shot=true",
            ));
        }
        let c = self.get(name)?;
        let cgroup = self.cgroup(&c);
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let record = c.record();
            let empty = StatsResponse::empty(&record.name, &c.id);
            if !is_up(&c) {
                let _ = tx.send(line(&empty)).await;
                return;
            }
            let mut lifecycle = c.subscribe();
            let machine = machine_memory();
            let mut previous: Option<(String, CpuStats)> = None;
            let mut primed = one_shot || stream;
            loop {
                let sample = if is_up(&c) {
                    let cgroup = cgroup.clone();
                    tokio::task::spawn_blocking(move || {
                        let stats = cgroup.stats();
                        let proc_stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
                        from_cgroup(
                            &stats,
                            cgroup.is_v2(),
                            system_cpu_usage(&proc_stat),
                            machine,
                        )
                    })
                    .await
                    .ok()
                    .flatten()
                } else {
                    None
                };
                let Some(mut sample) = sample else {
                    // Stopped: dockerd's empty statistics, then the end.
                    let _ = tx.send(line(&empty)).await;
                    return;
                };
                sample.name = record.name.clone();
                sample.id = c.id.clone();
                if let Some((read, cpu)) = previous.take() {
                    sample.preread = read;
                    sample.precpu_stats = cpu;
                }
                previous = Some((sample.read.clone(), sample.cpu_stats.clone()));
                if primed {
                    if tx.send(line(&sample)).await.is_err() || !stream {
                        return;
                    }
                } else {
                    // The first sample only primes the CPU deltas.
                    primed = true;
                }
                let stopped = async {
                    while lifecycle.borrow_and_update().running {
                        if lifecycle.changed().await.is_err() {
                            return;
                        }
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep(INTERVAL) => {}
                    () = stopped => {}
                    () = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }

    /// `GET /containers/{id}/top?ps_args=`: the host's `ps` (default `-ef`), its rows
    /// limited to the container's processes.
    pub async fn top(
        self: &Arc<Self>,
        name: &str,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse> {
        let ps_args = ps_args.filter(|a| !a.is_empty()).unwrap_or("-ef");
        validate_ps_args(ps_args)?;
        let c = self.get(name)?;
        let record = c.record();
        match record.state.status {
            Status::Restarting => {
                return Err(EngineError::conflict(format!(
                    "Container {} is restarting, wait until the container is running",
                    c.id
                )));
            }
            s if !s.is_live() => {
                return Err(EngineError::conflict(format!(
                    "container {} is not running",
                    c.id
                )));
            }
            _ => {}
        }
        let procs = self.cgroup(&c).procs().map_err(|e| {
            EngineError::internal(format!("cannot list the container's processes: {e}"))
        })?;
        let args: Vec<&str> = ps_args.split(' ').collect();
        let pids = format!(
            "-q{}",
            procs
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let run = |with_pids: bool| {
            let mut cmd = tokio::process::Command::new("ps");
            cmd.args(&args);
            if with_pids {
                cmd.arg(&pids);
            }
            cmd.stdin(std::process::Stdio::null());
            cmd.output()
        };
        let ps_failed = |e: String| EngineError::internal(format!("ps: {e}"));
        let mut output = run(true).await.map_err(|e| ps_failed(e.to_string()))?;
        if !output.status.success() {
            // Some options (such as `f`) do not go with `-q`: try again without.
            output = run(false).await.map_err(|e| ps_failed(e.to_string()))?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let first = stderr.split('\n').next().unwrap_or_default();
                let message = if first.is_empty() {
                    format!("exit status {}", output.status.code().unwrap_or(-1))
                } else {
                    first.to_string()
                };
                return Err(ps_failed(message));
            }
        }
        let list = parse_ps_output(&String::from_utf8_lossy(&output.stdout), &procs)
            .map_err(EngineError::internal)?;
        self.event("top", &record, &[]);
        Ok(list)
    }
}

/// dockerd's `validatePSArgs`: `-o user=PID`-style renames of other columns to `PID`
/// would fool the PID lookup.
fn validate_ps_args(args: &str) -> Result<()> {
    // The regexp `\s+([^\s]*)=\s*(PID[^\s]*)`, by hand.
    let words: Vec<(usize, &str)> = {
        let mut out = Vec::new();
        let mut start = None;
        for (i, ch) in args.char_indices() {
            if ch.is_ascii_whitespace() {
                if let Some(s) = start.take() {
                    out.push((s, &args[s..i]));
                }
            } else if start.is_none() {
                start = Some(i);
            }
        }
        if let Some(s) = start {
            out.push((s, &args[s..]));
        }
        out
    };
    for (n, (offset, word)) in words.iter().enumerate() {
        if *offset == 0 {
            continue;
        }
        for (eq, _) in word
            .match_indices('=')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            let key = &word[..eq];
            let rest = &word[eq + 1..];
            let value = if rest.is_empty() {
                words.get(n + 1).map(|(_, w)| *w).unwrap_or("")
            } else {
                rest
            };
            if value.starts_with("PID") {
                if key != "pid" {
                    return Err(EngineError::internal(format!(
                        "specifying \"{key}={value}\" is not allowed"
                    )));
                }
                break;
            }
        }
    }
    Ok(())
}

/// Go's `strings.FieldsFunc` on ASCII whitespace.
fn fields_ascii(s: &str) -> Vec<String> {
    s.split(['\t', '\n', '\x0c', '\r', ' '])
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// dockerd's `parsePSOutput`: the rows whose PID is one of `procs`, plus the thread rows
/// (`-` PID) that follow them; the last column takes any extra words.
pub fn parse_ps_output(output: &str, procs: &[u32]) -> Result<ContainerTopResponse, String> {
    let mut lines = output.split('\n');
    let titles = fields_ascii(lines.next().unwrap_or_default());
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or("Couldn't find PID field in ps output")?;
    let mut processes: Vec<Vec<String>> = Vec::new();
    let append = |processes: &mut Vec<Vec<String>>, mut fields: Vec<String>| {
        let n = titles.len().max(1);
        if fields.len() < n {
            fields.resize(n, String::new());
        }
        let rest = fields.split_off(n - 1).join(" ");
        fields.push(rest);
        processes.push(fields);
    };
    let mut in_container = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let fields = fields_ascii(line);
        let Some(pid) = fields.get(pid_index) else {
            continue;
        };
        if pid == "-" {
            if in_container {
                append(&mut processes, fields);
            }
            continue;
        }
        let pid: i64 = pid.parse().map_err(|_| {
            format!("Unexpected pid '{pid}': strconv.Atoi: parsing \"{pid}\": invalid syntax")
        })?;
        in_container = procs.iter().any(|p| i64::from(*p) == pid);
        if in_container {
            append(&mut processes, fields);
        }
    }
    Ok(ContainerTopResponse {
        titles: Some(titles),
        processes: (!processes.is_empty()).then_some(processes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stats_match_dockerd() {
        let json = serde_json::to_string(&StatsResponse::empty("/web", "abc")).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"read":"0001-01-01T00:00:00Z","preread":"0001-01-01T00:00:00Z","pids_stats":{},"#,
                r#""blkio_stats":{"io_service_bytes_recursive":null,"io_serviced_recursive":null,"#,
                r#""io_queue_recursive":null,"io_service_time_recursive":null,"io_wait_time_recursive":null,"#,
                r#""io_merged_recursive":null,"io_time_recursive":null,"sectors_recursive":null},"#,
                r#""num_procs":0,"storage_stats":{},"#,
                r#""cpu_stats":{"cpu_usage":{"total_usage":0,"usage_in_kernelmode":0,"usage_in_usermode":0},"#,
                r#""throttling_data":{"periods":0,"throttled_periods":0,"throttled_time":0}},"#,
                r#""precpu_stats":{"cpu_usage":{"total_usage":0,"usage_in_kernelmode":0,"usage_in_usermode":0},"#,
                r#""throttling_data":{"periods":0,"throttled_periods":0,"throttled_time":0}},"#,
                r#""memory_stats":{},"name":"/web","id":"abc"}"#
            )
        );
    }

    #[test]
    fn system_cpu_usage_reads_proc_stat() {
        let text = "cpu  100 0 50 850 0 0 0 0 0 0\ncpu0 50 0 25 425 0 0 0 0 0 0\ncpu1 50 0 25 425 0 0 0 0 0 0\nintr 1\n";
        assert_eq!(system_cpu_usage(text), (10_000_000_000, 2));
    }

    #[test]
    fn go_times_trim_zeros() {
        use chrono::TimeZone;
        let t = chrono::Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(go_time(t), "2024-01-02T03:04:05Z");
        let t = t + chrono::Duration::nanoseconds(120_000_000);
        assert_eq!(go_time(t), "2024-01-02T03:04:05.12Z");
    }

    #[test]
    fn v1_and_v2_samples() {
        let mut stats = cgroups::Stats {
            memory: Some(cgroups::MemoryStats {
                usage: 10,
                max_usage: 20,
                limit: 9_223_372_036_854_771_712,
                failcnt: 1,
                stats: BTreeMap::from([("rss".to_string(), 5), ("shmem".to_string(), 1)]),
            }),
            cpu: Some(cgroups::CpuStats {
                total: 100,
                percpu: vec![60, 40],
                kernel: 30,
                user: 70,
                ..Default::default()
            }),
            pids: Some(cgroups::PidsStats {
                current: 2,
                limit: None,
            }),
            blkio: Some(cgroups::BlkioStats::default()),
        };
        let v1 = from_cgroup(&stats, false, (1000, 2), 4096).unwrap();
        assert_eq!(v1.memory_stats.limit, 4096);
        assert_eq!(v1.memory_stats.max_usage, 20);
        assert_eq!(v1.memory_stats.stats["rss"], 5);
        assert_eq!(v1.memory_stats.stats["total_cache"], 0);
        assert!(!v1.memory_stats.stats.contains_key("shmem"));
        assert_eq!(
            v1.pids_stats,
            PidsStats {
                current: 2,
                limit: 0
            }
        );
        assert_eq!(v1.cpu_stats.cpu_usage.percpu_usage, [60, 40]);
        assert_eq!(
            (v1.cpu_stats.system_cpu_usage, v1.cpu_stats.online_cpus),
            (1000, 2)
        );
        assert_eq!(v1.blkio_stats.io_service_bytes_recursive, Some(Vec::new()));
        assert_eq!(v1.blkio_stats.sectors_recursive, Some(Vec::new()));
        stats.cpu.as_mut().unwrap().percpu.clear();
        let v2 = from_cgroup(&stats, true, (1000, 2), 4096).unwrap();
        assert_eq!(v2.memory_stats.max_usage, 0);
        assert_eq!(v2.memory_stats.stats["shmem"], 1);
        assert_eq!(v2.pids_stats.limit, u64::MAX);
        assert_eq!(v2.blkio_stats.io_service_bytes_recursive, None);
        assert_eq!(v2.blkio_stats.sectors_recursive, None);
        let json = serde_json::to_value(&v2).unwrap();
        assert!(json["cpu_stats"]["cpu_usage"].get("percpu_usage").is_none());
        assert!(from_cgroup(&cgroups::Stats::default(), true, (0, 0), 0).is_none());
    }

    #[test]
    fn ps_output_is_filtered_to_the_container() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n\
                   root         100       1  0 10:01 ?        00:00:00 sleep 30\n\
                   root         101     100  0 10:01 ?        00:00:00 sh -c x y\n";
        let top = parse_ps_output(out, &[100, 101]).unwrap();
        assert_eq!(top.titles.as_ref().unwrap().len(), 8);
        let procs = top.processes.unwrap();
        assert_eq!(procs.len(), 2);
        assert_eq!(procs[0][1], "100");
        assert_eq!(procs[0][7], "sleep 30");
        assert_eq!(procs[1][7], "sh -c x y");
        let threads = "PID TID CMD\n100 - sleep\n- 100 -\n- 102 -\n200 - other\n- 200 -\n";
        let top = parse_ps_output(threads, &[100]).unwrap();
        assert_eq!(top.processes.unwrap().len(), 3);
        assert_eq!(
            parse_ps_output("USER CMD\nroot x\n", &[1]).unwrap_err(),
            "Couldn't find PID field in ps output"
        );
        assert!(
            parse_ps_output("PID CMD\nabc x\n", &[1])
                .unwrap_err()
                .starts_with("Unexpected pid 'abc'")
        );
        let none = parse_ps_output("PID CMD\n5 x\n", &[1]).unwrap();
        assert!(none.processes.is_none());
    }

    #[test]
    fn ps_args_may_not_rename_columns_to_pid() {
        assert!(validate_ps_args("-ef").is_ok());
        assert!(validate_ps_args("-o pid=PID,comm").is_ok());
        assert_eq!(
            validate_ps_args("-o user=PID").unwrap_err().message,
            "specifying \"user=PID\" is not allowed"
        );
        assert!(validate_ps_args("-o user= PID").is_err());
    }
}
