//! `berth port`: the published ports of a container, naturally sorted.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::Endpoint;
use super::{container_path, get_json};
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub args: Vec<String>,
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Natural order (`sortorder.NaturalLess`): digit runs compare as numbers.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let da = std::str::from_utf8(&a[..na])
                    .unwrap_or("0")
                    .trim_start_matches('0');
                let db = std::str::from_utf8(&b[..nb])
                    .unwrap_or("0")
                    .trim_start_matches('0');
                let o = da.len().cmp(&db.len()).then(da.cmp(db));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

pub async fn run(a: PortArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.args.len())?;
    ctx.args(Args::Max(2), a.args.len())?;
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let c = get_json(&ep, &format!("{}/json", container_path(&a.args[0]))).await?;
    let ports = c["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut lines = Vec::new();
    if let Some(want) = a.args.get(1) {
        let (port, proto) = match want.split_once('/') {
            Some((p, pr)) => (p.to_string(), pr.to_string()),
            None => (want.clone(), "tcp".to_string()),
        };
        let key = format!("{port}/{proto}");
        if let Some(bindings) = ports.get(&key).and_then(|b| b.as_array()) {
            for b in bindings {
                lines.push(join_host_port(
                    b["HostIp"].as_str().unwrap_or(""),
                    b["HostPort"].as_str().unwrap_or(""),
                ));
            }
        }
        if lines.is_empty() {
            return Err(CliError::msg(format!(
                "Error: No public port '{want}' published for {}",
                a.args[0]
            ))
            .into());
        }
    } else {
        for (key, bindings) in &ports {
            for b in bindings.as_array().into_iter().flatten() {
                lines.push(format!(
                    "{key} -> {}",
                    join_host_port(
                        b["HostIp"].as_str().unwrap_or(""),
                        b["HostPort"].as_str().unwrap_or("")
                    )
                ));
            }
        }
    }
    lines.sort_by(|x, y| natural_cmp(x, y));
    let mut text = String::new();
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    out(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["9000/tcp -> x", "80/tcp -> y", "443/tcp -> z"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["80/tcp -> y", "443/tcp -> z", "9000/tcp -> x"]);
        assert_eq!(join_host_port("::", "80"), "[::]:80");
    }
}
