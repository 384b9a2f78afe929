//! A container's cgroup, read and written directly on the cgroupfs: the statistics
//! `docker stats` shows, the processes `docker top` lists, and the limits `docker update`
//! changes on a running container.
//!
//! Both layouts are supported: cgroup v2 (one unified tree; detected by
//! `<root>/cgroup.controllers`) and cgroup v1 (one tree per controller under
//! `<root>/<controller>/`). The root is a parameter, so both are tested against fake trees.
//! Writes follow runc's `libcontainer/cgroups/fs` and `fs2` (write order for memory and
//! swap, the shares→weight and blkio→io weight conversions).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The kernel's `USER_HZ`: the unit of `cpuacct.stat`.
const USER_HZ: u64 = 100;

/// A cgroup: a cgroupfs root and a path inside it (`/berth/<id>`).
#[derive(Debug, Clone)]
pub struct Cgroup {
    root: PathBuf,
    relative: PathBuf,
    v2: bool,
}

/// Memory counters, in bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStats {
    pub usage: u64,
    /// The peak usage (v1 `memory.max_usage_in_bytes`, v2 `memory.peak` when present).
    pub max_usage: u64,
    /// The limit; `u64::MAX` (or v1's huge page-aligned value) when unlimited.
    pub limit: u64,
    /// v1 `memory.failcnt`; v2 the `oom` count of `memory.events`.
    pub failcnt: u64,
    /// `memory.stat`, as the kernel writes it.
    pub stats: BTreeMap<String, u64>,
}

/// CPU time, in nanoseconds, and CFS throttling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuStats {
    pub total: u64,
    /// Per CPU (v1 only: v2 has no per-CPU accounting).
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when `pids.max` is `max`.
    pub limit: Option<u64>,
}

/// One line of block I/O accounting: device, operation (`Read`, `Write`, … on v1;
/// `read`/`write` on v2) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlkioStats {
    pub service_bytes: Vec<BlkioEntry>,
    /// v1 only.
    pub serviced: Vec<BlkioEntry>,
}

/// Everything [`Cgroup::stats`] could read; a controller that is not there is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub memory: Option<MemoryStats>,
    pub cpu: Option<CpuStats>,
    pub pids: Option<PidsStats>,
    pub blkio: Option<BlkioStats>,
}

/// A change of limits, as `docker update` asks for it. `None` (or 0 where Docker uses 0
/// for "unset") leaves a setting alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceUpdate {
    /// Bytes; -1 for unlimited.
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// Memory plus swap, as Docker counts it; -1 for unlimited swap.
    pub memory_swap: Option<i64>,
    /// v1 `cpu.shares`; converted to `cpu.weight` on v2.
    pub cpu_shares: Option<u64>,
    /// µs per period; -1 for unlimited.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// 0 or negative: unlimited.
    pub pids_limit: Option<i64>,
    /// 10 to 1000.
    pub blkio_weight: Option<u16>,
}

/// runc's `ConvertCPUSharesToCgroupV2Value`: [2, 262144] onto [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// runc's `ConvertBlkIOToIOWeightValue`: [10, 1000] onto [1, 10000].
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

/// runc's `ConvertMemorySwapToCgroupV2Value`: Docker's memory+swap to v2's swap alone.
pub fn swap_to_v2(memory_swap: i64, memory: i64) -> io::Result<i64> {
    if memory == -1 && memory_swap == 0 {
        return Ok(-1);
    }
    if memory_swap == -1 || memory_swap == 0 {
        return Ok(memory_swap);
    }
    if memory == 0 || memory == -1 {
        return Err(io::Error::other(
            "unable to set swap limit without memory limit",
        ));
    }
    if memory < 0 {
        return Err(io::Error::other(format!("invalid memory value: {memory}")));
    }
    if memory_swap < memory {
        return Err(io::Error::other(
            "memory+swap limit should be >= memory limit",
        ));
    }
    Ok(memory_swap - memory)
}

fn with_path(err: io::Error, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

fn read(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path).map_err(|e| with_path(e, path))
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value).map_err(|e| with_path(e, path))
}

fn parse_u64(text: &str, path: &Path) -> io::Result<u64> {
    let text = text.trim();
    if text == "max" {
        return Ok(u64::MAX);
    }
    text.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a number: {text:?}", path.display()),
        )
    })
}

fn read_u64(path: &Path) -> io::Result<u64> {
    parse_u64(&read(path)?, path)
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `cpuacct.stat`).
fn read_keyed(path: &Path) -> io::Result<BTreeMap<String, u64>> {
    Ok(read(path)?
        .lines()
        .filter_map(|line| {
            let (k, v) = line.split_once(char::is_whitespace)?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect())
}

/// `-1` as `max`, else the number.
fn limit_text(value: i64) -> String {
    if value < 0 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

impl Cgroup {
    /// `root` is the cgroupfs mount (`/sys/fs/cgroup`); `path` the spec's
    /// `linux.cgroupsPath` (`/berth/<id>`).
    pub fn new(root: &Path, path: &str) -> Cgroup {
        Cgroup {
            root: root.to_path_buf(),
            relative: PathBuf::from(path.trim_start_matches('/')),
            v2: root.join("cgroup.controllers").exists(),
        }
    }

    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// The directory holding `controller`'s files.
    pub fn dir(&self, controller: &str) -> PathBuf {
        if self.v2 {
            self.root.join(&self.relative)
        } else {
            self.root.join(controller).join(&self.relative)
        }
    }

    fn file(&self, controller: &str, name: &str) -> PathBuf {
        self.dir(controller).join(name)
    }

    /// Whether the cgroup exists (the container runs, or has not been cleaned up yet).
    pub fn exists(&self) -> bool {
        if self.v2 {
            return self.dir("").is_dir();
        }
        ["pids", "memory", "cpu", "devices", "freezer"]
            .iter()
            .any(|c| self.dir(c).is_dir())
    }

    /// The processes in the cgroup (`cgroup.procs`).
    pub fn procs(&self) -> io::Result<Vec<u32>> {
        let candidates: &[&str] = if self.v2 {
            &[""]
        } else {
            &["pids", "memory", "cpu", "devices", "freezer", "cpuacct"]
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no cgroup.procs");
        for controller in candidates {
            match read(&self.file(controller, "cgroup.procs")) {
                Ok(text) => {
                    return Ok(text
                        .split_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Whatever statistics the cgroup has.
    pub fn stats(&self) -> Stats {
        Stats {
            memory: self.memory_stats().ok(),
            cpu: self.cpu_stats().ok(),
            pids: self.pids_stats().ok(),
            blkio: self.blkio_stats().ok(),
        }
    }

    pub fn memory_stats(&self) -> io::Result<MemoryStats> {
        let f = |name| self.file("memory", name);
        if self.v2 {
            let failcnt = read_keyed(&f("memory.events"))
                .ok()
                .and_then(|e| e.get("oom").copied())
                .unwrap_or(0);
            Ok(MemoryStats {
                usage: read_u64(&f("memory.current"))?,
                max_usage: read_u64(&f("memory.peak")).unwrap_or(0),
                limit: read_u64(&f("memory.max"))?,
                failcnt,
                stats: read_keyed(&f("memory.stat"))?,
            })
        } else {
            Ok(MemoryStats {
                usage: read_u64(&f("memory.usage_in_bytes"))?,
                max_usage: read_u64(&f("memory.max_usage_in_bytes")).unwrap_or(0),
                limit: read_u64(&f("memory.limit_in_bytes"))?,
                failcnt: read_u64(&f("memory.failcnt")).unwrap_or(0),
                stats: read_keyed(&f("memory.stat"))?,
            })
        }
    }

    pub fn cpu_stats(&self) -> io::Result<CpuStats> {
        if self.v2 {
            let stat = read_keyed(&self.file("cpu", "cpu.stat"))?;
            let get = |k: &str| stat.get(k).copied().unwrap_or(0);
            return Ok(CpuStats {
                total: get("usage_usec") * 1000,
                percpu: Vec::new(),
                kernel: get("system_usec") * 1000,
                user: get("user_usec") * 1000,
                periods: get("nr_periods"),
                throttled_periods: get("nr_throttled"),
                throttled_time: get("throttled_usec") * 1000,
            });
        }
        let acct = |name| self.file("cpuacct", name);
        let total = read_u64(&acct("cpuacct.usage"))?;
        let percpu = read(&acct("cpuacct.usage_percpu"))
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let ticks = read_keyed(&acct("cpuacct.stat")).unwrap_or_default();
        let ns = |k: &str| ticks.get(k).copied().unwrap_or(0) * (1_000_000_000 / USER_HZ);
        let throttling = read_keyed(&self.file("cpu", "cpu.stat")).unwrap_or_default();
        let get = |k: &str| throttling.get(k).copied().unwrap_or(0);
        Ok(CpuStats {
            total,
            percpu,
            kernel: ns("system"),
            user: ns("user"),
            periods: get("nr_periods"),
            throttled_periods: get("nr_throttled"),
            throttled_time: get("throttled_time"),
        })
    }

    pub fn pids_stats(&self) -> io::Result<PidsStats> {
        let current = read_u64(&self.file("pids", "pids.current"))?;
        let max = read(&self.file("pids", "pids.max"))?;
        let limit = match max.trim() {
            "max" => None,
            n => Some(parse_u64(n, &self.file("pids", "pids.max"))?),
        };
        Ok(PidsStats { current, limit })
    }

    pub fn blkio_stats(&self) -> io::Result<BlkioStats> {
        if self.v2 {
            let text = read(&self.file("io", "io.stat"))?;
            let mut out = BlkioStats::default();
            for line in text.lines() {
                let mut words = line.split_whitespace();
                let Some((major, minor)) = words.next().and_then(device) else {
                    continue;
                };
                let mut rbytes = 0;
                let mut wbytes = 0;
                for word in words {
                    match word.split_once('=') {
                        Some(("rbytes", v)) => rbytes = v.parse().unwrap_or(0),
                        Some(("wbytes", v)) => wbytes = v.parse().unwrap_or(0),
                        _ => {}
                    }
                }
                out.service_bytes.push(BlkioEntry {
                    major,
                    minor,
                    op: "read".into(),
                    value: rbytes,
                });
                out.service_bytes.push(BlkioEntry {
                    major,
                    minor,
                    op: "write".into(),
                    value: wbytes,
                });
            }
            return Ok(out);
        }
        let pick = |base: &str| -> io::Result<Vec<BlkioEntry>> {
            let recursive = self.file("blkio", &format!("{base}_recursive"));
            let path = if recursive.exists() {
                recursive
            } else {
                self.file("blkio", base)
            };
            Ok(blkio_entries(&read(&path)?))
        };
        Ok(BlkioStats {
            service_bytes: pick("blkio.throttle.io_service_bytes")?,
            serviced: pick("blkio.throttle.io_serviced").unwrap_or_default(),
        })
    }

    /// Whether the host limits memory+swap (v1 `memory.memsw.*` needs swap accounting).
    pub fn swap_supported(&self) -> bool {
        if self.v2 {
            let dir = self.dir("memory");
            !dir.is_dir() || dir.join("memory.swap.max").exists()
        } else {
            self.root
                .join("memory")
                .join("memory.memsw.limit_in_bytes")
                .exists()
        }
    }

    /// Whether a block I/O weight can be set.
    pub fn blkio_weight_supported(&self) -> bool {
        if self.v2 {
            let dir = self.dir("io");
            !dir.is_dir() || dir.join("io.weight").exists() || dir.join("io.bfq.weight").exists()
        } else {
            let dir = self.root.join("blkio");
            dir.join("blkio.weight").exists() || dir.join("blkio.bfq.weight").exists()
        }
    }

    /// The CPUs and memory nodes available (the root cpuset's), for validating
    /// `--cpuset-cpus`/`--cpuset-mems`.
    pub fn available_cpuset(&self) -> (Option<String>, Option<String>) {
        let (dir, cpus, mems) = if self.v2 {
            (
                self.root.clone(),
                "cpuset.cpus.effective",
                "cpuset.mems.effective",
            )
        } else {
            (self.root.join("cpuset"), "cpuset.cpus", "cpuset.mems")
        };
        let get = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        };
        (get(cpus), get(mems))
    }

    /// Applies new limits to the (existing) cgroup.
    pub fn apply(&self, r: &ResourceUpdate) -> io::Result<()> {
        if !self.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("cgroup {} does not exist", self.relative.display()),
            ));
        }
        if self.v2 {
            self.apply_v2(r)
        } else {
            self.apply_v1(r)
        }
    }

    fn apply_v1(&self, r: &ResourceUpdate) -> io::Result<()> {
        let mem = |name| self.file("memory", name);
        let memory = r.memory.unwrap_or(0);
        let mut swap = r.memory_swap.unwrap_or(0);
        if memory == -1 && swap == 0 && mem("memory.memsw.limit_in_bytes").exists() {
            swap = -1;
        }
        let set_memory = |value: i64| -> io::Result<()> {
            if value == 0 {
                return Ok(());
            }
            let path = mem("memory.limit_in_bytes");
            match std::fs::write(&path, value.to_string()) {
                Ok(()) => Ok(()),
                Err(e) if e.raw_os_error() == Some(16) => {
                    // EBUSY: below the current usage.
                    let usage = read_u64(&mem("memory.usage_in_bytes")).unwrap_or(0);
                    let peak = read_u64(&mem("memory.max_usage_in_bytes")).unwrap_or(0);
                    Err(io::Error::other(format!(
                        "unable to set memory limit to {value} (current usage: {usage}, peak usage: {peak})"
                    )))
                }
                Err(e) => Err(with_path(e, &path)),
            }
        };
        let set_swap = |value: i64| -> io::Result<()> {
            let path = mem("memory.memsw.limit_in_bytes");
            // Without swap accounting, "unlimited" is what there is already.
            if value == 0 || (value == -1 && !path.exists()) {
                return Ok(());
            }
            write(&path, &value.to_string())
        };
        // The kernel wants memory <= memory+swap at every step: raise swap first when
        // the new swap is above the current memory limit.
        let swap_first = memory != 0
            && swap != 0
            && (swap == -1 || read_u64(&mem("memory.limit_in_bytes"))? < swap as u64);
        if swap_first {
            set_swap(swap)?;
            set_memory(memory)?;
        } else {
            set_memory(memory)?;
            set_swap(swap)?;
        }
        if let Some(v) = r.memory_reservation.filter(|v| *v != 0) {
            write(&mem("memory.soft_limit_in_bytes"), &v.to_string())?;
        }
        let cpu = |name| self.file("cpu", name);
        if let Some(shares) = r.cpu_shares.filter(|s| *s != 0) {
            write(&cpu("cpu.shares"), &shares.to_string())?;
            let got = read_u64(&cpu("cpu.shares"))?;
            if got < shares {
                return Err(io::Error::other(format!(
                    "the maximum allowed cpu-shares is {got}"
                )));
            } else if got > shares {
                return Err(io::Error::other(format!(
                    "the minimum allowed cpu-shares is {got}"
                )));
            }
        }
        let quota = r.cpu_quota.filter(|q| *q != 0);
        let mut retry_period = None;
        if let Some(period) = r.cpu_period.filter(|p| *p != 0)
            && let Err(err) = std::fs::write(cpu("cpu.cfs_period_us"), period.to_string())
        {
            // A shorter period can exceed the parent's quota until the quota is set.
            if err.raw_os_error() != Some(22) || quota.is_none() {
                return Err(with_path(err, &cpu("cpu.cfs_period_us")));
            }
            retry_period = Some(period);
        }
        if let Some(quota) = quota {
            write(&cpu("cpu.cfs_quota_us"), &quota.to_string())?;
            if let Some(period) = retry_period {
                write(&cpu("cpu.cfs_period_us"), &period.to_string())?;
            }
        }
        self.apply_cpuset(r)?;
        self.apply_pids(r)?;
        if let Some(weight) = r.blkio_weight.filter(|w| *w != 0) {
            let bfq = self.file("blkio", "blkio.bfq.weight");
            let path = if bfq.exists() {
                bfq
            } else {
                self.file("blkio", "blkio.weight")
            };
            write(&path, &weight.to_string())?;
        }
        Ok(())
    }

    fn apply_v2(&self, r: &ResourceUpdate) -> io::Result<()> {
        let f = |name| self.file("", name);
        let memory = r.memory.unwrap_or(0);
        let swap = swap_to_v2(r.memory_swap.unwrap_or(0), memory)?;
        if swap != 0 {
            let text = limit_text(swap);
            if let Err(err) = write(&f("memory.swap.max"), &text) {
                // Without swap accounting, only "unlimited" and "none" are fine to drop.
                if !(err.kind() == io::ErrorKind::NotFound && (swap == -1 || swap == 0)) {
                    return Err(err);
                }
            }
        }
        if memory != 0 {
            write(&f("memory.max"), &limit_text(memory))?;
        }
        if let Some(v) = r.memory_reservation.filter(|v| *v != 0) {
            write(&f("memory.low"), &limit_text(v))?;
        }
        if let Some(shares) = r.cpu_shares.filter(|s| *s != 0) {
            write(&f("cpu.weight"), &shares_to_weight(shares).to_string())?;
        }
        let quota = r.cpu_quota.filter(|q| *q != 0);
        let period = r.cpu_period.filter(|p| *p != 0);
        if quota.is_some() || period.is_some() {
            // `cpu.max` holds both: keep the half that does not change.
            let current = read(&f("cpu.max")).unwrap_or_default();
            let mut words = current.split_whitespace();
            let old_quota = words.next().unwrap_or("max").to_string();
            let old_period = words.next().unwrap_or("100000").to_string();
            let quota = match quota {
                Some(q) => limit_text(q),
                None => old_quota,
            };
            let period = period.map_or(old_period, |p| p.to_string());
            write(&f("cpu.max"), &format!("{quota} {period}"))?;
        }
        self.apply_cpuset(r)?;
        self.apply_pids(r)?;
        if let Some(weight) = r.blkio_weight.filter(|w| *w != 0) {
            let bfq = f("io.bfq.weight");
            if bfq.exists() {
                write(&bfq, &weight.to_string())?;
            } else {
                write(&f("io.weight"), &blkio_to_io_weight(weight).to_string())?;
            }
        }
        Ok(())
    }

    fn apply_cpuset(&self, r: &ResourceUpdate) -> io::Result<()> {
        if let Some(cpus) = r.cpuset_cpus.as_deref().filter(|s| !s.is_empty()) {
            write(&self.file("cpuset", "cpuset.cpus"), cpus)?;
        }
        if let Some(mems) = r.cpuset_mems.as_deref().filter(|s| !s.is_empty()) {
            write(&self.file("cpuset", "cpuset.mems"), mems)?;
        }
        Ok(())
    }

    fn apply_pids(&self, r: &ResourceUpdate) -> io::Result<()> {
        if let Some(limit) = r.pids_limit {
            let text = if limit > 0 {
                limit.to_string()
            } else {
                "max".to_string()
            };
            write(&self.file("pids", "pids.max"), &text)?;
        }
        Ok(())
    }
}

/// `8:0`.
fn device(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// v1 blkio lines (`8:0 Read 4096`); the `Total` line is dropped, as containerd does.
fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (major, minor) = device(words.next()?)?;
            let op = words.next()?.to_string();
            let value = words.next()?.parse().ok()?;
            Some(BlkioEntry {
                major,
                minor,
                op,
                value,
            })
        })
        .collect()
}

/// Parses a cpuset list (`0-3,5`) as Docker's `parsers.ParseUintList` does.
pub fn parse_cpuset(text: &str) -> Result<Vec<u32>, String> {
    let invalid = || format!("invalid format: {text}");
    let mut out = Vec::new();
    if text.is_empty() {
        return Ok(out);
    }
    for part in text.split(',') {
        match part.split_once('-') {
            None => out.push(part.parse().map_err(|_| invalid())?),
            Some((lo, hi)) => {
                let lo: u32 = lo.parse().map_err(|_| invalid())?;
                let hi: u32 = hi.parse().map_err(|_| invalid())?;
                if hi < lo {
                    return Err(invalid());
                }
                out.extend(lo..=hi);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "/berth/c1";

    fn put(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn get(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .trim()
            .to_string()
    }

    /// A v1 hierarchy as runc leaves it for a container.
    fn v1_tree() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let mem = r.join("memory/berth/c1");
        put(
            &r.join("memory"),
            "memory.memsw.limit_in_bytes",
            "9223372036854771712\n",
        );
        put(&mem, "memory.usage_in_bytes", "1048576\n");
        put(&mem, "memory.max_usage_in_bytes", "2097152\n");
        put(&mem, "memory.limit_in_bytes", "67108864\n");
        put(&mem, "memory.memsw.limit_in_bytes", "134217728\n");
        put(&mem, "memory.soft_limit_in_bytes", "9223372036854771712\n");
        put(&mem, "memory.failcnt", "3\n");
        put(
            &mem,
            "memory.stat",
            "cache 4096\nrss 8192\nshmem 0\ntotal_inactive_file 4096\n",
        );
        put(&mem, "cgroup.procs", "100\n101\n");
        let acct = r.join("cpuacct/berth/c1");
        put(&acct, "cpuacct.usage", "5000000000\n");
        put(&acct, "cpuacct.usage_percpu", "3000000000 2000000000 \n");
        put(&acct, "cpuacct.stat", "user 300\nsystem 150\n");
        let cpu = r.join("cpu/berth/c1");
        put(
            &cpu,
            "cpu.stat",
            "nr_periods 10\nnr_throttled 2\nthrottled_time 12345\n",
        );
        put(&cpu, "cpu.shares", "1024\n");
        put(&cpu, "cpu.cfs_period_us", "100000\n");
        put(&cpu, "cpu.cfs_quota_us", "50000\n");
        let pids = r.join("pids/berth/c1");
        put(&pids, "pids.current", "2\n");
        put(&pids, "pids.max", "50\n");
        put(&pids, "cgroup.procs", "100\n101\n");
        let blkio = r.join("blkio/berth/c1");
        put(
            &blkio,
            "blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\nTotal 12288\n",
        );
        put(
            &blkio,
            "blkio.throttle.io_serviced",
            "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
        );
        put(&r.join("blkio"), "blkio.weight", "500\n");
        put(&blkio, "blkio.weight", "500\n");
        let cpuset = r.join("cpuset/berth/c1");
        put(&r.join("cpuset"), "cpuset.cpus", "0-3\n");
        put(&r.join("cpuset"), "cpuset.mems", "0\n");
        put(&cpuset, "cpuset.cpus", "0-3\n");
        put(&cpuset, "cpuset.mems", "0\n");
        root
    }

    /// A v2 tree as runc leaves it for a container.
    fn v2_tree() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        put(r, "cgroup.controllers", "cpuset cpu io memory pids\n");
        put(r, "cpuset.cpus.effective", "0-7\n");
        put(r, "cpuset.mems.effective", "0\n");
        let d = r.join("berth/c1");
        put(&d, "memory.current", "1048576\n");
        put(&d, "memory.peak", "3145728\n");
        put(&d, "memory.max", "max\n");
        put(&d, "memory.swap.max", "max\n");
        put(&d, "memory.low", "0\n");
        put(
            &d,
            "memory.events",
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        );
        put(
            &d,
            "memory.stat",
            "anon 8192\nfile 4096\ninactive_file 1024\n",
        );
        put(
            &d,
            "cpu.stat",
            "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 7\nnr_throttled 1\nthrottled_usec 40\n",
        );
        put(&d, "cpu.weight", "100\n");
        put(&d, "cpu.max", "max 100000\n");
        put(&d, "pids.current", "3\n");
        put(&d, "pids.max", "max\n");
        put(
            &d,
            "io.stat",
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=2 rios=3 wios=4\n",
        );
        put(&d, "io.weight", "default 100\n");
        put(&d, "cpuset.cpus", "\n");
        put(&d, "cpuset.mems", "\n");
        put(&d, "cgroup.procs", "42\n43\n44\n");
        root
    }

    #[test]
    fn detects_the_layout() {
        let v1 = v1_tree();
        let v2 = v2_tree();
        let c1 = Cgroup::new(v1.path(), ID);
        let c2 = Cgroup::new(v2.path(), ID);
        assert!(!c1.is_v2());
        assert!(c2.is_v2());
        assert_eq!(c1.dir("memory"), v1.path().join("memory/berth/c1"));
        assert_eq!(c2.dir("memory"), v2.path().join("berth/c1"));
        assert!(c1.exists() && c2.exists());
        assert!(!Cgroup::new(v1.path(), "/berth/gone").exists());
        assert!(!Cgroup::new(v2.path(), "/berth/gone").exists());
    }

    #[test]
    fn v1_stats() {
        let root = v1_tree();
        let cg = Cgroup::new(root.path(), ID);
        let stats = cg.stats();
        let mem = stats.memory.unwrap();
        assert_eq!(mem.usage, 1_048_576);
        assert_eq!(mem.max_usage, 2_097_152);
        assert_eq!(mem.limit, 67_108_864);
        assert_eq!(mem.failcnt, 3);
        assert_eq!(mem.stats["rss"], 8192);
        assert_eq!(mem.stats["total_inactive_file"], 4096);
        let cpu = stats.cpu.unwrap();
        assert_eq!(cpu.total, 5_000_000_000);
        assert_eq!(cpu.percpu, [3_000_000_000, 2_000_000_000]);
        assert_eq!(cpu.user, 3_000_000_000);
        assert_eq!(cpu.kernel, 1_500_000_000);
        assert_eq!(
            (cpu.periods, cpu.throttled_periods, cpu.throttled_time),
            (10, 2, 12345)
        );
        assert_eq!(
            stats.pids.unwrap(),
            PidsStats {
                current: 2,
                limit: Some(50)
            }
        );
        let blkio = stats.blkio.unwrap();
        assert_eq!(blkio.service_bytes.len(), 3);
        assert_eq!(
            blkio.service_bytes[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 8192
            }
        );
        assert_eq!(blkio.serviced.len(), 2);
        assert_eq!(cg.procs().unwrap(), [100, 101]);
        assert_eq!(
            cg.available_cpuset(),
            (Some("0-3".to_string()), Some("0".to_string()))
        );
        assert!(cg.swap_supported());
        assert!(cg.blkio_weight_supported());
    }

    #[test]
    fn v2_stats() {
        let root = v2_tree();
        let cg = Cgroup::new(root.path(), ID);
        let stats = cg.stats();
        let mem = stats.memory.unwrap();
        assert_eq!(mem.usage, 1_048_576);
        assert_eq!(mem.max_usage, 3_145_728);
        assert_eq!(mem.limit, u64::MAX);
        assert_eq!(mem.failcnt, 1);
        assert_eq!(mem.stats["inactive_file"], 1024);
        let cpu = stats.cpu.unwrap();
        assert_eq!(cpu.total, 5_000_000);
        assert!(cpu.percpu.is_empty());
        assert_eq!(cpu.user, 3_000_000);
        assert_eq!(cpu.kernel, 2_000_000);
        assert_eq!(
            (cpu.periods, cpu.throttled_periods, cpu.throttled_time),
            (7, 1, 40_000)
        );
        assert_eq!(
            stats.pids.unwrap(),
            PidsStats {
                current: 3,
                limit: None
            }
        );
        let blkio = stats.blkio.unwrap();
        let ops: Vec<_> = blkio
            .service_bytes
            .iter()
            .map(|e| (e.major, e.minor, e.op.as_str(), e.value))
            .collect();
        assert_eq!(
            ops,
            [
                (8, 0, "read", 4096),
                (8, 0, "write", 8192),
                (253, 1, "read", 1),
                (253, 1, "write", 2)
            ]
        );
        assert_eq!(cg.procs().unwrap(), [42, 43, 44]);
        assert_eq!(cg.available_cpuset().0.as_deref(), Some("0-7"));
    }

    #[test]
    fn missing_controllers_read_as_none() {
        let root = v2_tree();
        std::fs::remove_file(root.path().join("berth/c1/io.stat")).unwrap();
        std::fs::remove_file(root.path().join("berth/c1/pids.current")).unwrap();
        let stats = Cgroup::new(root.path(), ID).stats();
        assert!(stats.blkio.is_none() && stats.pids.is_none());
        assert!(stats.memory.is_some());
        let gone = Cgroup::new(root.path(), "/berth/gone");
        assert_eq!(gone.stats(), Stats::default());
        assert!(gone.procs().is_err());
        assert!(gone.apply(&ResourceUpdate::default()).is_err());
    }

    #[test]
    fn v1_updates() {
        let root = v1_tree();
        let r = root.path();
        let cg = Cgroup::new(r, ID);
        cg.apply(&ResourceUpdate {
            memory: Some(268_435_456),
            memory_swap: Some(536_870_912),
            memory_reservation: Some(33_554_432),
            cpu_shares: Some(512),
            cpu_quota: Some(150_000),
            cpu_period: Some(50_000),
            cpuset_cpus: Some("1-2".into()),
            cpuset_mems: Some("0".into()),
            pids_limit: Some(100),
            blkio_weight: Some(300),
        })
        .unwrap();
        let mem = r.join("memory/berth/c1");
        assert_eq!(get(&mem, "memory.limit_in_bytes"), "268435456");
        assert_eq!(get(&mem, "memory.memsw.limit_in_bytes"), "536870912");
        assert_eq!(get(&mem, "memory.soft_limit_in_bytes"), "33554432");
        let cpu = r.join("cpu/berth/c1");
        assert_eq!(get(&cpu, "cpu.shares"), "512");
        assert_eq!(get(&cpu, "cpu.cfs_quota_us"), "150000");
        assert_eq!(get(&cpu, "cpu.cfs_period_us"), "50000");
        assert_eq!(get(&r.join("cpuset/berth/c1"), "cpuset.cpus"), "1-2");
        assert_eq!(get(&r.join("pids/berth/c1"), "pids.max"), "100");
        assert_eq!(get(&r.join("blkio/berth/c1"), "blkio.weight"), "300");

        // Only what is asked changes; unlimited pids and memory.
        cg.apply(&ResourceUpdate {
            memory: Some(-1),
            pids_limit: Some(0),
            cpu_quota: Some(-1),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(get(&mem, "memory.limit_in_bytes"), "-1");
        assert_eq!(get(&mem, "memory.memsw.limit_in_bytes"), "-1");
        assert_eq!(get(&cpu, "cpu.cfs_quota_us"), "-1");
        assert_eq!(get(&cpu, "cpu.cfs_period_us"), "50000");
        assert_eq!(get(&cpu, "cpu.shares"), "512");
        assert_eq!(get(&r.join("pids/berth/c1"), "pids.max"), "max");
        assert_eq!(get(&mem, "memory.soft_limit_in_bytes"), "33554432");
    }

    #[test]
    fn v1_memory_only_keeps_swap() {
        let root = v1_tree();
        let cg = Cgroup::new(root.path(), ID);
        cg.apply(&ResourceUpdate {
            memory: Some(134_217_728),
            ..Default::default()
        })
        .unwrap();
        let mem = root.path().join("memory/berth/c1");
        assert_eq!(get(&mem, "memory.limit_in_bytes"), "134217728");
        assert_eq!(get(&mem, "memory.memsw.limit_in_bytes"), "134217728");
    }

    #[test]
    fn v1_blkio_weight_prefers_bfq() {
        let root = v1_tree();
        let blkio = root.path().join("blkio/berth/c1");
        put(&blkio, "blkio.bfq.weight", "100\n");
        Cgroup::new(root.path(), ID)
            .apply(&ResourceUpdate {
                blkio_weight: Some(700),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(get(&blkio, "blkio.bfq.weight"), "700");
        assert_eq!(get(&blkio, "blkio.weight"), "500");
    }

    #[test]
    fn v2_updates() {
        let root = v2_tree();
        let d = root.path().join("berth/c1");
        let cg = Cgroup::new(root.path(), ID);
        cg.apply(&ResourceUpdate {
            memory: Some(134_217_728),
            memory_swap: Some(268_435_456),
            memory_reservation: Some(67_108_864),
            cpu_shares: Some(512),
            cpu_quota: Some(50_000),
            cpuset_cpus: Some("0,2".into()),
            pids_limit: Some(20),
            blkio_weight: Some(500),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(get(&d, "memory.max"), "134217728");
        assert_eq!(get(&d, "memory.swap.max"), "134217728");
        assert_eq!(get(&d, "memory.low"), "67108864");
        assert_eq!(get(&d, "cpu.weight"), "20");
        assert_eq!(get(&d, "cpu.max"), "50000 100000");
        assert_eq!(get(&d, "cpuset.cpus"), "0,2");
        assert_eq!(get(&d, "pids.max"), "20");
        assert_eq!(get(&d, "io.weight"), "4950");

        cg.apply(&ResourceUpdate {
            cpu_period: Some(200_000),
            memory: Some(-1),
            pids_limit: Some(-1),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(get(&d, "cpu.max"), "50000 200000");
        assert_eq!(get(&d, "memory.max"), "max");
        assert_eq!(get(&d, "memory.swap.max"), "max");
        assert_eq!(get(&d, "pids.max"), "max");

        put(&d, "io.bfq.weight", "100\n");
        cg.apply(&ResourceUpdate {
            blkio_weight: Some(300),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(get(&d, "io.bfq.weight"), "300");
    }

    #[test]
    fn v2_swap_needs_memory() {
        let root = v2_tree();
        let cg = Cgroup::new(root.path(), ID);
        let err = cg
            .apply(&ResourceUpdate {
                memory_swap: Some(1 << 30),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to set swap limit without memory limit"
        );
    }

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(swap_to_v2(0, 100).unwrap(), 0);
        assert_eq!(swap_to_v2(-1, 100).unwrap(), -1);
        assert_eq!(swap_to_v2(0, -1).unwrap(), -1);
        assert_eq!(swap_to_v2(300, 100).unwrap(), 200);
        assert!(swap_to_v2(50, 100).is_err());
        assert_eq!(parse_cpuset("0-2,5").unwrap(), [0, 1, 2, 5]);
        assert_eq!(parse_cpuset("a").unwrap_err(), "invalid format: a");
        assert!(parse_cpuset("3-1").is_err());
    }
}
