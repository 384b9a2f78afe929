//! `berth ps` / `berth container ls`: docker's container table and formatter context.

use std::collections::HashMap;

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::Endpoint;
use super::get_json;
use crate::cli::parse_filter;
use crate::commands::image::list::FORMAT_HELP;
use crate::commands::{Ctx, out};
use crate::format::template::{Map, MapKind, Value};
use crate::format::time::go_time_string;
use crate::format::units::{ellipsis, human_size_precision, since, truncate_id};
use crate::format::{Format, render_rows};
use crate::reference::Reference;

#[derive(ClapArgs, Debug)]
pub struct ListArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, value_name = "int", default_value = "-1", allow_hyphen_values = true, value_parser = super::parse::go_int)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
const RAW: &str = "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n";

/// docker's `NewContainerFormat`.
pub fn container_format(source: &str, quiet: bool, size: bool) -> Format {
    Format(match source {
        "table" | "" if quiet => "{{.ID}}".into(),
        "table" | "" => {
            let mut f = DEFAULT_TABLE.to_string();
            if size {
                f.push_str("\t{{.Size}}");
            }
            f
        }
        "raw" if quiet => "container_id: {{.ID}}".into(),
        "raw" => {
            let mut f = RAW.to_string();
            if size {
                f.push_str("size: {{.Size}}\\n");
            }
            f
        }
        _ if quiet => "{{.ID}}".into(),
        other => other.to_string(),
    })
}

pub async fn run(a: ListArgs, ctx: &Ctx) -> Result<()> {
    let source = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => f.to_string(),
        None => match ctx.config().ok().and_then(|c| c.string("psFormat")) {
            Some(f) if !a.quiet && !f.is_empty() => f,
            _ => "table".to_string(),
        },
    };
    let size = a.size || (!a.quiet && source.contains(".Size"));
    let format = container_format(&source, a.quiet, size);
    let mut limit = a.last;
    if a.latest && limit == -1 {
        limit = 1;
    }
    let mut q: Vec<(&str, String)> = Vec::new();
    if a.all {
        q.push(("all", "1".into()));
    }
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    if size {
        q.push(("size", "1".into()));
    }
    if !a.filter.is_empty() {
        let mut filters: HashMap<&str, HashMap<&str, bool>> = HashMap::new();
        for (k, v) in &a.filter {
            filters.entry(k).or_default().insert(v, true);
        }
        q.push(("filters", serde_json::to_string(&filters)?));
    }
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let list = get_json(
        &ep,
        &format!("/containers/json{}", crate::client::query(&pairs)),
    )
    .await?;
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| container_context(c, !a.no_trunc))
        .collect();
    out(&render_rows(&format, &container_header(), &rows)?)
}

pub fn container_header() -> Value {
    Value::Map(
        Map::new(MapKind::Context("*formatter.ContainerContext".into()))
            .with("ID", "CONTAINER ID")
            .with("Names", "NAMES")
            .with("Image", "IMAGE")
            .with("Command", "COMMAND")
            .with("CreatedAt", "CREATED AT")
            .with("RunningFor", "CREATED")
            .with("Ports", "PORTS")
            .with("State", "STATE")
            .with("Status", "STATUS")
            .with("Size", "SIZE")
            .with("Labels", "LABELS")
            .with("Mounts", "MOUNTS")
            .with("LocalVolumes", "LOCAL VOLUMES")
            .with("Networks", "NETWORKS")
            .with("Platform", "PLATFORM"),
    )
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn image_name(c: &serde_json::Value, trunc: bool) -> String {
    let image = c["Image"].as_str().unwrap_or("");
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image.to_string();
    }
    let image_id = c["ImageID"].as_str().unwrap_or("");
    let t = truncate_id(image_id);
    if t == truncate_id(image) {
        return t;
    }
    match Reference::parse_normalized(image) {
        Ok(mut r) => {
            r.digest = None;
            r.familiar()
        }
        Err(_) => image.to_string(),
    }
}

/// docker's `DisplayablePorts`.
pub fn displayable_ports(ports: &[serde_json::Value]) -> String {
    let mut ports: Vec<(String, u16, u16, String)> = ports
        .iter()
        .map(|p| {
            (
                p["IP"].as_str().unwrap_or("").to_string(),
                p["PrivatePort"].as_u64().unwrap_or(0) as u16,
                p["PublicPort"].as_u64().unwrap_or(0) as u16,
                p["Type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    ports.sort_by(|a, b| {
        a.1.cmp(&b.1)
            .then_with(|| ip_key(&a.0).cmp(&ip_key(&b.0)))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for (ip, private, public, typ) in &ports {
        let mut key = typ.clone();
        if !ip.is_empty() {
            if public != private {
                let host = if ip.contains(':') {
                    format!("[{ip}]:{public}")
                } else {
                    format!("{ip}:{public}")
                };
                host_mappings.push(format!("{host}->{private}/{typ}"));
                continue;
            }
            key = format!("{ip}/{typ}");
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, *private, *private)),
            Some(g) if *private == g.2.wrapping_add(1) => g.2 = *private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                g.1 = *private;
                g.2 = *private;
            }
        }
    }
    for (k, first, last) in &groups {
        result.push(form_group(k, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn ip_key(ip: &str) -> (u8, Vec<u8>) {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v)) => (1, v.octets().to_vec()),
        Ok(std::net::IpAddr::V6(v)) => (2, v.octets().to_vec()),
        Err(_) => (0, Vec::new()),
    }
}

fn form_group(key: &str, start: u16, last: u16) -> String {
    let (ip, typ) = match key.rsplit_once('/') {
        Some((ip, t)) => (ip, t),
        None => ("", key),
    };
    let mut group = start.to_string();
    if start != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        let host = if ip.contains(':') {
            format!("[{ip}]:{group}")
        } else {
            format!("{ip}:{group}")
        };
        group = format!("{host}->{group}");
    }
    format!("{group}/{typ}")
}

/// One row of docker's `ContainerContext`.
pub fn container_context(c: &serde_json::Value, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| n.as_str().unwrap_or("").trim_start_matches('/').to_string())
        .collect();
    let names = if trunc {
        names
            .iter()
            .find(|n| !n.contains('/'))
            .cloned()
            .unwrap_or_default()
    } else {
        names.join(",")
    };
    let command = c["Command"].as_str().unwrap_or("");
    let command = go_quote(&if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    });
    let created = c["Created"].as_i64().unwrap_or(0);
    let srw = c["SizeRw"].as_i64().unwrap_or(0);
    let srootfs = c["SizeRootFs"].as_i64().unwrap_or(0);
    let mut size = human_size_precision(srw as f64, 3);
    if srootfs > 0 {
        size = format!(
            "{size} (virtual {})",
            human_size_precision(srootfs as f64, 3)
        );
    }
    let mut labels: Vec<(String, Value)> = Vec::new();
    let mut joined: Vec<String> = Vec::new();
    if let Some(map) = c["Labels"].as_object() {
        for (k, v) in map {
            let v = v.as_str().unwrap_or("");
            joined.push(format!("{k}={v}"));
            labels.push((k.clone(), Value::Str(v.to_string())));
        }
    }
    joined.sort();
    let mounts = c["Mounts"].as_array().cloned().unwrap_or_default();
    let mount_names: Vec<String> = mounts
        .iter()
        .map(|m| {
            let name = m["Name"].as_str().filter(|n| !n.is_empty());
            let name = name.unwrap_or_else(|| m["Source"].as_str().unwrap_or(""));
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local = mounts
        .iter()
        .filter(|m| m["Driver"].as_str() == Some("local"))
        .count();
    let mut networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let platform = match &c["ImageManifestDescriptor"]["platform"] {
        serde_json::Value::Object(p) => {
            Value::from_json(&serde_json::Value::Object(p.clone()).to_string())
                .unwrap_or(Value::Nil)
        }
        _ => Value::Nil,
    };
    let ports = displayable_ports(c["Ports"].as_array().map(|v| v.as_slice()).unwrap_or(&[]));
    Value::Map(
        Map::new(MapKind::Context("*formatter.ContainerContext".into()))
            .with(
                "ID",
                if trunc {
                    truncate_id(id)
                } else {
                    id.to_string()
                },
            )
            .with("Names", names)
            .with("Image", image_name(c, trunc))
            .with("Command", command)
            .with("CreatedAt", go_time_string(created))
            .with("RunningFor", since(created))
            .with("Ports", ports)
            .with("State", c["State"].as_str().unwrap_or(""))
            .with("Status", c["Status"].as_str().unwrap_or(""))
            .with("Size", size)
            .with("Labels", joined.join(","))
            .with("Label", Value::method(labels))
            .with("Mounts", mount_names.join(","))
            .with("LocalVolumes", local.to_string())
            .with("Networks", networks.join(","))
            .with("Platform", platform),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> serde_json::Value {
        serde_json::json!({
            "Id": "7a5c7cc0fad4aaaabbbbccccddddeeeeffff00001111222233334444555566667777",
            "Names": ["/web"],
            "Image": "busybox",
            "ImageID": "sha256:54031ecda5ded2e8c5ccd7cb905d39c732797d6dd3d824299ae0812dae024faf",
            "Command": "sleep 1000000000000000",
            "Created": chrono::Utc::now().timestamp() - 120,
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                      {"PrivatePort": 9000, "Type": "udp"}, {"PrivatePort": 9001, "Type": "udp"}],
            "Labels": {"x": "y", "a": "b"},
            "State": "running",
            "Status": "Up 2 minutes",
            "SizeRw": 0,
            "SizeRootFs": 1982277,
            "Mounts": [],
            "NetworkSettings": {"Networks": {"bridge": {}}}
        })
    }

    #[test]
    fn table_like_docker() {
        let f = container_format("table", false, true);
        let out = render_rows(
            &f,
            &container_header(),
            &[container_context(&summary(), true)],
        )
        .unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS                                 NAMES     SIZE\n\
             7a5c7cc0fad4   busybox   \"sleep 1000000000000…\"   2 minutes ago   Up 2 minutes   9000-9001/udp, 0.0.0.0:8080->80/tcp   web       0B (virtual 1.98MB)\n"
        );
    }

    #[test]
    fn json_and_label() {
        let row = container_context(&summary(), true);
        let out = render_rows(
            &Format("json".into()),
            &container_header(),
            std::slice::from_ref(&row),
        )
        .unwrap();
        assert!(
            out.starts_with("{\"Command\":\"\\\"sleep 1000000000000…\\\"\",\"CreatedAt\":"),
            "{out}"
        );
        assert!(out.contains("\"Labels\":\"a=b,x=y\",\"LocalVolumes\":\"0\",\"Mounts\":\"\",\"Names\":\"web\",\"Networks\":\"bridge\",\"Platform\":null,"), "{out}");
        assert!(!out.contains("\"Label\":"));
        let f = Format("{{.Label \"x\"}}|{{.Label \"nope\"}}|{{.State}}".into());
        assert_eq!(
            render_rows(&f, &container_header(), &[row]).unwrap(),
            "y||running\n"
        );
        assert_eq!(container_format("table", true, false).0, "{{.ID}}");
    }
}
