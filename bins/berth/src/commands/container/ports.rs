//! `-p/--publish` and `--expose` values (go-connections' `nat.ParsePortSpecs` with the docker
//! CLI's error texts).

use std::collections::HashMap;

use bollard::models::PortBinding;

use super::parse::valid_ip;

fn split_proto(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 || parts[1].is_empty() {
        return ("tcp".into(), parts[0].into());
    }
    (parts[1].into(), parts[0].into())
}

fn port_range(s: &str) -> Result<(u16, u16), ()> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| ())?;
    let b: u16 = b.parse().map_err(|_| ())?;
    if b < a {
        return Err(());
    }
    Ok((a, b))
}

/// Exposed ports and bindings of `-p` values (`[ip:][hostPort:]containerPort[/proto]`,
/// or the long `target=…,published=…` syntax).
pub fn publish(
    specs: &[String],
    exposed: &mut Vec<String>,
    bindings: &mut Vec<(String, PortBinding)>,
) -> Result<(), String> {
    for spec in specs {
        let spec = if spec.contains('=') {
            let mut params: HashMap<&str, &str> = HashMap::from([("protocol", "tcp")]);
            for param in spec.split(',') {
                match param.split_once('=') {
                    Some((k, v)) if !k.is_empty() => {
                        params.insert(k, v);
                    }
                    _ => {
                        return Err(format!(
                            "invalid publish opts format (should be name=value but got '{param}')"
                        ));
                    }
                }
            }
            format!(
                "{}:{}/{}",
                params.get("published").unwrap_or(&""),
                params.get("target").unwrap_or(&""),
                params["protocol"]
            )
        } else {
            spec.clone()
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let n = parts.len();
        let (ip, host, container) = match n {
            1 => (String::new(), "", parts[0]),
            2 => (String::new(), parts[0], parts[1]),
            3 => (parts[0].to_string(), parts[1], parts[2]),
            _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
        };
        let (proto, container) = split_proto(container);
        let mut ip = ip;
        if ip.starts_with('[') && ip.ends_with(']') {
            ip = ip[1..ip.len() - 1].to_string();
        }
        if !ip.is_empty() && !valid_ip(&ip) {
            return Err(format!("invalid ip address: {ip}"));
        }
        if container.is_empty() {
            return Err(format!("no port specified: {spec}<empty>"));
        }
        let (start, end) =
            port_range(&container).map_err(|_| format!("invalid containerPort: {container}"))?;
        let (hstart, hend) = if host.is_empty() {
            (0, 0)
        } else {
            port_range(host).map_err(|_| format!("invalid hostPort: {host}"))?
        };
        if !host.is_empty() && (end - start) != (hend - hstart) && hend != hstart {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ));
        }
        let proto = proto.to_lowercase();
        if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
            return Err(format!("invalid proto: {proto}"));
        }
        for (i, p) in (start..=end).enumerate() {
            let key = format!("{p}/{proto}");
            let host_port = if host.is_empty() {
                String::new()
            } else if end != start && hend != hstart {
                (hstart as usize + i).to_string()
            } else if end == start && hend != hstart {
                host.to_string()
            } else {
                hstart.to_string()
            };
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            bindings.push((
                key,
                PortBinding {
                    host_ip: Some(ip.clone()),
                    host_port: Some(host_port),
                },
            ));
        }
    }
    Ok(())
}

/// `--expose port[-end][/proto]`.
pub fn expose(spec: &str, exposed: &mut Vec<String>) -> Result<(), String> {
    let (proto, port) = split_proto(spec);
    let (a, b) = port.split_once('-').unwrap_or((&port, &port));
    let parse = |s: &str| -> Result<u16, String> {
        s.parse::<u16>().map_err(|_| {
            format!("invalid range format for --expose: {spec}, error: strconv.ParseUint: parsing {s:?}: invalid syntax")
        })
    };
    let (a, b) = (parse(a)?, parse(b)?);
    for p in a..=b {
        let key = format!("{p}/{}", if proto.is_empty() { "tcp" } else { &proto });
        if !exposed.contains(&key) {
            exposed.push(key);
        }
    }
    Ok(())
}
