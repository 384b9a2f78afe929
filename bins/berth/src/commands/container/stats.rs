//! `berth stats`: CPU, memory, network, block I/O and PIDs per container, computed from
//! `GET /containers/ID/stats` like docker (one sample with `--no-stream`, else a live table).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use clap::Args as ClapArgs;
use futures::StreamExt;

use super::conn::Endpoint;
use super::{container_path, get_json};
use crate::commands::{Ctx, out};
use crate::errors::CliError;
use crate::format::template::{Map, MapKind, Value};
use crate::format::units::{bytes_size, human_size_precision, truncate_id};
use crate::format::{Format, render_rows};

#[derive(ClapArgs, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// One container's figures (docker's `StatsEntry`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub container: String,
    pub name: String,
    pub id: String,
    pub cpu: f64,
    pub memory: f64,
    pub memory_limit: f64,
    pub memory_percent: f64,
    pub net_rx: f64,
    pub net_tx: f64,
    pub block_read: f64,
    pub block_write: f64,
    pub pids: u64,
    pub invalid: bool,
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The figures of one stats sample (`pre` is the previous sample's `cpu_stats`, or the
/// sample's own `precpu_stats`).
pub fn entry_from(container: &str, v: &serde_json::Value, pre: &serde_json::Value) -> Entry {
    let cpu = &v["cpu_stats"];
    let cpu_delta = f(&cpu["cpu_usage"]["total_usage"]) - f(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = f(&cpu["system_cpu_usage"]) - f(&pre["system_cpu_usage"]);
    let mut online = f(&cpu["online_cpus"]);
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0, |a| a.len()) as f64;
    }
    let cpu_percent = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mem = &v["memory_stats"];
    let usage = f(&mem["usage"]);
    let stats = &mem["stats"];
    let memory = match stats.get("total_inactive_file").and_then(|x| x.as_f64()) {
        Some(i) if i < usage => usage - i,
        _ => match stats.get("inactive_file").and_then(|x| x.as_f64()) {
            Some(i) if i < usage => usage - i,
            _ => usage,
        },
    };
    let limit = f(&mem["limit"]);
    let memory_percent = if limit != 0.0 {
        memory / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = v["networks"].as_object() {
        for n in nets.values() {
            rx += f(&n["rx_bytes"]);
            tx += f(&n["tx_bytes"]);
        }
    }
    let (mut br, mut bw) = (0.0, 0.0);
    for e in v["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().unwrap_or("").to_lowercase().as_str() {
            "read" => br += f(&e["value"]),
            "write" => bw += f(&e["value"]),
            _ => {}
        }
    }
    Entry {
        container: container.to_string(),
        name: v["name"].as_str().unwrap_or("").to_string(),
        id: v["id"].as_str().unwrap_or("").to_string(),
        cpu: cpu_percent,
        memory,
        memory_limit: limit,
        memory_percent,
        net_rx: rx,
        net_tx: tx,
        block_read: br,
        block_write: bw,
        pids: v["pids_stats"]["current"].as_u64().unwrap_or(0),
        invalid: false,
    }
}

fn header() -> Value {
    Value::Map(
        Map::new(MapKind::Context("*formatter.statsContext".into()))
            .with("Container", "CONTAINER")
            .with("ID", "CONTAINER ID")
            .with("Name", "NAME")
            .with("CPUPerc", "CPU %")
            .with("MemUsage", "MEM USAGE / LIMIT")
            .with("MemPerc", "MEM %")
            .with("NetIO", "NET I/O")
            .with("BlockIO", "BLOCK I/O")
            .with("PIDs", "PIDS"),
    )
}

/// docker's `statsContext` for one entry.
pub fn row(e: &Entry, trunc: bool) -> Value {
    let pct = |v: f64| {
        if e.invalid {
            "--".to_string()
        } else {
            format!("{v:.2}%")
        }
    };
    let pair = |a: f64, b: f64| {
        if e.invalid {
            "--".to_string()
        } else {
            format!(
                "{} / {}",
                human_size_precision(a, 3),
                human_size_precision(b, 3)
            )
        }
    };
    let name = if e.name.len() > 1 {
        e.name[1..].to_string()
    } else {
        "--".to_string()
    };
    Value::Map(
        Map::new(MapKind::Context("*formatter.statsContext".into()))
            .with("Container", e.container.clone())
            .with(
                "ID",
                if trunc {
                    truncate_id(&e.id)
                } else {
                    e.id.clone()
                },
            )
            .with("Name", name)
            .with("CPUPerc", pct(e.cpu))
            .with(
                "MemUsage",
                if e.invalid {
                    "-- / --".to_string()
                } else {
                    format!("{} / {}", bytes_size(e.memory), bytes_size(e.memory_limit))
                },
            )
            .with("MemPerc", pct(e.memory_percent))
            .with("NetIO", pair(e.net_rx, e.net_tx))
            .with("BlockIO", pair(e.block_read, e.block_write))
            .with(
                "PIDs",
                if e.invalid {
                    "--".to_string()
                } else {
                    e.pids.to_string()
                },
            ),
    )
}

pub async fn run(a: StatsArgs, ctx: &Ctx) -> Result<()> {
    let source = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => f.to_string(),
        None => ctx
            .config()
            .ok()
            .and_then(|c| c.string("statsFormat"))
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "table".into()),
    };
    let format = Format(if source == "table" {
        DEFAULT.to_string()
    } else {
        source
    });
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let names: Vec<String> = if a.containers.is_empty() {
        let q = if a.all { "?all=1" } else { "" };
        let list = get_json(&ep, &format!("/containers/json{q}")).await?;
        list.as_array()
            .into_iter()
            .flatten()
            .map(|c| c["Id"].as_str().unwrap_or("").to_string())
            .collect()
    } else {
        a.containers.clone()
    };
    let trunc = !a.no_trunc;
    if a.no_stream {
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for n in &names {
            match get_json(&ep, &format!("{}/stats?stream=0", container_path(n))).await {
                Ok(v) => rows.push(row(&entry_from(n, &v, &v["precpu_stats"]), trunc)),
                Err(e) => errors.push(e.message),
            }
        }
        if !errors.is_empty() && !a.containers.is_empty() {
            return Err(CliError::msg(errors.join("\n")).into());
        }
        return out(&render_rows(&format, &header(), &rows)?);
    }
    // Every container has a row from the start, zeros until its first sample (as docker).
    let latest: Arc<Mutex<HashMap<String, Entry>>> = Arc::new(Mutex::new(
        names
            .iter()
            .map(|n| {
                let e = Entry {
                    container: n.clone(),
                    ..Default::default()
                };
                (n.clone(), e)
            })
            .collect(),
    ));
    for n in &names {
        let stream = client
            .get_stream(&format!("{}/stats?stream=1", container_path(n)))
            .await?;
        let latest = latest.clone();
        let n = n.clone();
        tokio::spawn(async move {
            let mut stream = Box::pin(stream);
            let mut pre = serde_json::Value::Null;
            while let Some(Ok(raw)) = stream.next().await {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&raw) else {
                    continue;
                };
                let prev = if pre.is_null() {
                    v["precpu_stats"].clone()
                } else {
                    pre.clone()
                };
                let e = entry_from(&n, &v, &prev);
                pre = v["cpu_stats"].clone();
                if let Ok(mut l) = latest.lock() {
                    l.insert(n.clone(), e);
                }
            }
            if let Ok(mut l) = latest.lock()
                && let Some(e) = l.get_mut(&n)
            {
                e.invalid = true;
            }
        });
    }
    let terminal = std::io::stdout().is_terminal();
    if terminal {
        out("\x1b[2J")?;
    }
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        ticker.tick().await;
        let rows: Vec<Value> = {
            let l = latest.lock().map_err(|_| CliError::msg("stats lock"))?;
            names
                .iter()
                .filter_map(|n| l.get(n))
                .map(|e| row(e, trunc))
                .collect()
        };
        let text = render_rows(&format, &header(), &rows)?;
        if terminal {
            let mut screen = String::from("\x1b[H");
            for line in text.trim_end_matches('\n').split('\n') {
                screen.push_str(line);
                screen.push_str("\x1b[K\n");
            }
            screen.push_str("\x1b[J");
            out(&screen)?;
        } else {
            out(&text)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_like_docker() {
        let v = serde_json::json!({
            "id": "7a5c7cc0fad4aaaabbbbcccc", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000}, "system_cpu_usage": 100_000_000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000}, "system_cpu_usage": 90_000_000},
            "memory_stats": {"usage": 1_000_000, "limit": 25_275_000_000u64, "stats": {"inactive_file": 119_360}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096}, {"op": "Write", "value": 0}]},
            "pids_stats": {"current": 1}
        });
        let e = entry_from("web", &v, &v["precpu_stats"]);
        let f = Format(DEFAULT.into());
        let text = render_rows(&f, &header(), &[row(&e, true)]).unwrap();
        assert_eq!(
            text,
            "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O      BLOCK I/O    PIDS\n\
             7a5c7cc0fad4   web       20.00%    860KiB / 23.54GiB   0.00%     1.5kB / 0B   4.1kB / 0B   1\n"
        );
    }
}
