//! `berth update`: `POST /containers/ID/update` with the resources given.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::{Endpoint, daemon_error};
use super::{container_path, parse};
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug, Default)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16", value_parser = parse::go_uint16)]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int", value_parser = parse::go_int)]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", value_parser = parse::go_int, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "int", value_parser = parse::go_int)]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "int", value_parser = parse::go_int)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int", value_parser = parse::go_int)]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal", value_parser = parse::nano_cpus)]
    pub cpus: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", value_parser = parse::ram_in_bytes)]
    pub memory: Option<i64>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes", value_parser = parse::ram_in_bytes)]
    pub memory_reservation: Option<i64>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", value_parser = parse::mem_swap, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", value_parser = parse::go_int, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The `UpdateConfig` body: the resources that were given and the restart policy.
pub fn update_body(a: &UpdateArgs) -> Result<serde_json::Value, String> {
    let mut body = serde_json::Map::new();
    let mut set = |k: &str, v: serde_json::Value| {
        body.insert(k.to_string(), v);
    };
    let mut n = 0;
    macro_rules! field {
        ($opt:expr, $key:expr) => {
            if let Some(v) = &$opt {
                set($key, serde_json::json!(v));
                n += 1;
            }
        };
    }
    field!(a.blkio_weight, "BlkioWeight");
    field!(a.cpuset_cpus, "CpusetCpus");
    field!(a.cpuset_mems, "CpusetMems");
    field!(a.cpu_shares, "CpuShares");
    field!(a.memory, "Memory");
    field!(a.memory_reservation, "MemoryReservation");
    field!(a.memory_swap, "MemorySwap");
    field!(a.cpu_period, "CpuPeriod");
    field!(a.cpu_quota, "CpuQuota");
    field!(a.cpu_rt_period, "CpuRealtimePeriod");
    field!(a.cpu_rt_runtime, "CpuRealtimeRuntime");
    field!(a.cpus, "NanoCpus");
    if let Some(p) = a.pids_limit {
        n += 1;
        if p != 0 {
            set("PidsLimit", serde_json::json!(p));
        }
    }
    let (name, count) = match &a.restart {
        Some(r) => {
            n += 1;
            parse::restart_policy(r)?
        }
        None => (String::new(), 0),
    };
    set(
        "RestartPolicy",
        serde_json::json!({"Name": name, "MaximumRetryCount": count}),
    );
    if n == 0 {
        return Err("you must provide one or more flags when using this command".into());
    }
    Ok(serde_json::Value::Object(body))
}

pub async fn run(a: UpdateArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.containers.len())?;
    let body = update_body(&a).map_err(CliError::msg)?;
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for name in &a.containers {
        let (status, resp) = ep
            .call(
                "POST",
                &format!("{}/update", container_path(name)),
                Some(&body),
            )
            .await?;
        if (200..300).contains(&status) {
            out(&format!("{name}\n"))?;
            let v: serde_json::Value = serde_json::from_slice(&resp).unwrap_or_default();
            for w in v["Warnings"].as_array().into_iter().flatten() {
                warnings.push(w.as_str().unwrap_or("").to_string());
            }
        } else {
            errors.push(daemon_error(&resp).message);
        }
    }
    if !warnings.is_empty() {
        out(&format!("{}\n", warnings.join("\n")))?;
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errors.join("\n")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let a = UpdateArgs {
            memory: Some(1 << 20),
            cpus: Some(500_000_000),
            restart: Some("on-failure:2".into()),
            ..Default::default()
        };
        let b = update_body(&a).unwrap();
        assert_eq!(b["Memory"], 1 << 20);
        assert_eq!(b["NanoCpus"], 500_000_000);
        assert_eq!(
            b["RestartPolicy"],
            serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 2})
        );
        assert_eq!(
            update_body(&UpdateArgs::default()).unwrap_err(),
            "you must provide one or more flags when using this command"
        );
    }
}
