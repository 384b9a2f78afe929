//! Where a registry name points: host mapping (`docker.io`), loopback and insecure registries.

use std::net::IpAddr;

use crate::error::DistributionError;

/// The registry docker.io references live on.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// The host (`host[:port]`) that serves the API of a registry named in a reference.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API_HOST
    } else {
        registry
    }
}

/// A registry name as `docker login` passes it (`https://index.docker.io/v1/`, `localhost:5000`,
/// `http://host:5000/`) reduced to the name references use (`docker.io`, `localhost:5000`).
pub fn normalize_registry(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s).to_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" | "" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into the host without brackets and the port.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((h, tail)) = rest.split_once(']')
    {
        return (h, tail.strip_prefix(':'));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (s, None),
    }
}

/// `localhost`, 127.0.0.0/8 and ::1, with or without port: plain HTTP is fine there.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let (host, _) = split_host_port(registry);
    let host = host.to_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One `insecure_registries` entry: a `host[:port]` or a CIDR.
#[derive(Debug, Clone)]
pub(crate) enum InsecureEntry {
    Host(String),
    Cidr(IpAddr, u8),
}

impl InsecureEntry {
    pub fn parse(s: &str) -> Result<InsecureEntry, DistributionError> {
        let s = s.trim();
        if s.contains("://") {
            return Err(DistributionError::InvalidConfig(format!(
                "insecure registry {s} should not contain '://'"
            )));
        }
        if s.is_empty() {
            return Err(DistributionError::InvalidConfig(
                "empty insecure registry".into(),
            ));
        }
        if let Some((ip, bits)) = s.split_once('/') {
            let bad = || {
                DistributionError::InvalidConfig(format!(
                    "invalid CIDR {s:?} in insecure registries"
                ))
            };
            let ip: IpAddr = ip.parse().map_err(|_| bad())?;
            let bits: u8 = bits.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if bits > max {
                return Err(bad());
            }
            return Ok(InsecureEntry::Cidr(ip, bits));
        }
        Ok(InsecureEntry::Host(s.to_lowercase()))
    }

    /// Whether this entry covers a registry (`host[:port]`): names match exactly, as in docker;
    /// CIDRs match IP literals only (names are not resolved).
    pub fn matches(&self, registry: &str) -> bool {
        match self {
            InsecureEntry::Host(h) => *h == registry.to_lowercase(),
            InsecureEntry::Cidr(net, bits) => {
                let Ok(ip) = split_host_port(registry).0.parse::<IpAddr>() else {
                    return false;
                };
                in_cidr(ip, *net, *bits)
            }
        }
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            (u32::from(a) & mask) == (u32::from(b) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            (u128::from(a) & mask) == (u128::from(b) & mask)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_docker_hub() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        assert_eq!(
            normalize_registry("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(
            normalize_registry("http://LocalHost:5000/"),
            "localhost:5000"
        );
        assert_eq!(normalize_registry("quay.io"), "quay.io");
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:5000",
            "::1",
            "a.localhost",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "10.0.0.1:5000",
            "example.com",
            "[::2]:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn insecure_entries() {
        let e = |s: &str| InsecureEntry::parse(s).unwrap();
        assert!(e("10.0.0.0/8").matches("10.1.2.3:5000"));
        assert!(!e("10.0.0.0/8").matches("11.1.2.3:5000"));
        assert!(!e("10.0.0.0/8").matches("ten.example:5000"));
        assert!(e("fd00::/8").matches("[fd12::1]:5000"));
        assert!(e("0.0.0.0/0").matches("1.2.3.4"));
        assert!(e("myreg:5000").matches("MyReg:5000"));
        assert!(!e("myreg:5000").matches("myreg:5001"));
        assert!(!e("myreg").matches("myreg:5001"));
        for bad in ["http://myreg", "10.0.0.0/33", "x/8", ""] {
            assert!(InsecureEntry::parse(bad).is_err(), "{bad}");
        }
    }
}
