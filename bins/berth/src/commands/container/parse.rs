//! Value parsers for the container flags, with the docker CLI's error texts (go-units sizes,
//! Go durations, `--mount`, `-v`, `-p`, `--ulimit`, `--device`, env and label files).

use std::collections::HashMap;

use bollard::models::{
    DeviceMapping, Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions,
    MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig, ResourcesUlimits,
};

pub use super::ports::{expose, publish};

/// go-units `RAMInBytes`: `512m`, `1.5g`, `100` (bytes), binary multipliers.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
        i += 1;
    }
    let num = &s[..i];
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return Err(bad());
    }
    let value: f64 = num
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".")
        .parse()
        .map_err(|_| bad())?;
    let mut rest = &s[i..];
    rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let mut mult: f64 = 1.0;
    if let Some(c) = chars.peek().copied() {
        let m = match c.to_ascii_lowercase() {
            'k' => Some(1024f64),
            'm' => Some(1024f64.powi(2)),
            'g' => Some(1024f64.powi(3)),
            't' => Some(1024f64.powi(4)),
            'p' => Some(1024f64.powi(5)),
            _ => None,
        };
        if let Some(m) = m {
            mult = m;
            chars.next();
        }
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(bad());
    }
    Ok((value * mult) as i64)
}

/// `--memory-swap`: `-1` (unlimited) or a size.
pub fn mem_swap(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

/// `--cpus`: a rational number of CPUs, as nanoCPUs.
pub fn nano_cpus(s: &str) -> Result<i64, String> {
    let bad = || format!("failed to parse {s} as a rational number");
    let (num, den): (i128, i128) = if let Some((a, b)) = s.split_once('/') {
        let a: i128 = a.parse().map_err(|_| bad())?;
        let b: i128 = b.parse().map_err(|_| bad())?;
        if b == 0 {
            return Err(bad());
        }
        (a, b)
    } else {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let neg = int.starts_with('-');
        let int = int.trim_start_matches(['-', '+']);
        if (int.is_empty() && frac.is_empty())
            || !int.chars().all(|c| c.is_ascii_digit())
            || !frac.chars().all(|c| c.is_ascii_digit())
            || frac.len() > 30
        {
            return Err(bad());
        }
        let digits = format!("{int}{frac}");
        let n: i128 = digits.parse().map_err(|_| bad())?;
        let d = 10i128.pow(frac.len() as u32);
        (if neg { -n } else { n }, d)
    };
    let scaled = num * 1_000_000_000;
    if scaled % den != 0 {
        return Err("value is too precise".to_string());
    }
    Ok((scaled / den) as i64)
}

/// Go's `time.ParseDuration` with its error texts, in nanoseconds.
pub fn go_duration(s: &str) -> Result<i64, String> {
    match crate::format::units::parse_go_duration(s) {
        Some(n) => Ok(n as i64),
        None => {
            let body = s.trim_start_matches(['-', '+']);
            if !body.is_empty() && body.chars().all(|c| c.is_ascii_digit() || c == '.') {
                Err(format!("time: missing unit in duration {s:?}"))
            } else {
                Err(format!("time: invalid duration {s:?}"))
            }
        }
    }
}

/// Go's `strconv.ParseInt` errors for integer flags.
pub fn go_int(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .map_err(|_| format!("strconv.ParseInt: parsing {s:?}: invalid syntax"))
}

pub fn go_uint16(s: &str) -> Result<u16, String> {
    s.parse::<u16>().map_err(|_| {
        if s.parse::<u64>().is_ok() {
            format!("strconv.ParseUint: parsing {s:?}: value out of range")
        } else {
            format!("strconv.ParseUint: parsing {s:?}: invalid syntax")
        }
    })
}

/// `-a/--attach`: one of the three streams, lower-cased.
pub fn attach_stream(s: &str) -> Result<String, String> {
    let l = s.to_lowercase();
    if ["stdin", "stdout", "stderr"].contains(&l.as_str()) {
        Ok(l)
    } else {
        Err("valid streams are STDIN, STDOUT and STDERR".to_string())
    }
}

/// `-e`: `KEY=value`, or `KEY` filled in from this process's environment when set there.
pub fn env_var(s: &str) -> Result<String, String> {
    let (k, v) = match s.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (s, None),
    };
    if k.is_empty() {
        return Err(format!("invalid environment variable: {s}"));
    }
    if v.is_some() {
        return Ok(s.to_string());
    }
    match std::env::var(k) {
        Ok(val) => Ok(format!("{k}={val}")),
        Err(_) => Ok(s.to_string()),
    }
}

/// `-l/--label`.
pub fn label(s: &str) -> Result<String, String> {
    let key = s.split_once('=').map_or(s, |(k, _)| k);
    if key.trim().is_empty() {
        return Err(format!("invalid label '{s}': empty name"));
    }
    Ok(s.to_string())
}

pub fn valid_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// `--dns`.
pub fn ip_address(s: &str) -> Result<String, String> {
    let t = s.trim();
    if valid_ip(t) {
        Ok(t.to_string())
    } else {
        Err(format!("IP address is not correctly formatted: {s}"))
    }
}

/// `--add-host host:ip` (or `host=ip`).
pub fn extra_host(s: &str) -> Result<String, String> {
    let cut = s.split_once('=').or_else(|| s.split_once(':'));
    let Some((k, v)) = cut.filter(|(k, _)| !k.is_empty()) else {
        return Err(format!("bad format for add-host: {s:?}"));
    };
    let mut ip = v;
    if ip != "host-gateway" {
        if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
            ip = &ip[1..ip.len() - 1];
        }
        if !valid_ip(ip) {
            return Err(format!("invalid IP address in add-host: {ip:?}"));
        }
    }
    Ok(format!("{k}:{ip}"))
}

/// `--sysctl`: namespaced sysctls only, as docker allows them.
pub fn sysctl(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    const EXACT: [&str; 5] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
    ];
    const MORE: [&str; 3] = ["kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];
    let ok = s.contains('=')
        && (EXACT.contains(&k)
            || MORE.contains(&k)
            || k.starts_with("fs.mqueue.")
            || k.starts_with("net."));
    if ok {
        Ok((k.to_string(), v.to_string()))
    } else {
        Err(format!("sysctl '{s}' is not allowed"))
    }
}

/// go-units `ParseUlimit`: `nofile=1024[:2048]`.
pub fn ulimit(s: &str) -> Result<ResourcesUlimits, String> {
    let Some((name, limits)) = s.split_once('=') else {
        return Err(format!("invalid ulimit argument: {s}"));
    };
    const NAMES: [&str; 16] = [
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    if !NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let (soft, hard) = match limits.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (limits, None),
    };
    let soft: i64 = soft
        .parse()
        .map_err(|_| format!("invalid ulimit soft value: {soft}"))?;
    let hard: i64 = match hard {
        Some(h) => h
            .parse()
            .map_err(|_| format!("invalid ulimit hard value: {h}"))?,
        None => soft,
    };
    if hard != -1 && soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    crate::cli::parse_go_bool(s).ok()
}

/// Splits one CSV record (Go's `encoding/csv` for a single line, quotes included).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
            }
            _ => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err(
            "parse error on line 1, column 1: extraneous or missing \" in quoted-field".into(),
        );
    }
    fields.push(cur);
    Ok(fields)
}

fn abs_if_dot(val: &str) -> String {
    if (val == "." || val.starts_with("./"))
        && let Ok(cwd) = std::env::current_dir()
    {
        return clean_path(&cwd.join(val).to_string_lossy());
    }
    val.to_string()
}

/// Go's `path.Clean` for absolute paths.
pub fn clean_path(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn mount_type(t: &str) -> MountType {
    match t {
        "bind" => MountType::BIND,
        "volume" => MountType::VOLUME,
        "tmpfs" => MountType::TMPFS,
        "npipe" => MountType::NPIPE,
        "cluster" => MountType::CLUSTER,
        "image" => MountType::IMAGE,
        _ => MountType::VOLUME,
    }
}

/// A `--mount` value; an unknown `type=` is kept as its text (the daemon refuses it).
#[derive(Debug, Clone, PartialEq)]
pub struct MountSpec {
    pub mount: Mount,
    pub raw_type: String,
}

/// docker's `--mount` syntax: `type=bind|volume|tmpfs,source=…,target=…,readonly,…`.
pub fn mount(value: &str) -> Result<MountSpec, String> {
    let fields = csv_fields(value)?;
    let mut m = Mount::default();
    let mut typ = "volume".to_string();
    let mut vol: Option<MountVolumeOptions> = None;
    let mut bind: Option<MountBindOptions> = None;
    let mut tmpfs: Option<MountTmpfsOptions> = None;
    fn vol_opts(v: &mut Option<MountVolumeOptions>) -> &mut MountVolumeOptions {
        v.get_or_insert_with(|| MountVolumeOptions {
            driver_config: Some(MountVolumeOptionsDriverConfig::default()),
            ..Default::default()
        })
    }
    for field in &fields {
        let Some((key, val)) = field.split_once('=') else {
            match field.as_str() {
                "readonly" | "ro" => m.read_only = Some(true),
                "volume-nocopy" => vol_opts(&mut vol).no_copy = Some(true),
                "bind-nonrecursive" => {
                    bind.get_or_insert_with(Default::default).non_recursive = Some(true)
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let invalid = || format!("invalid value for {key}: {val}");
        match key {
            "type" => typ = val.to_lowercase(),
            "source" | "src" => m.source = Some(abs_if_dot(val)),
            "target" | "dst" | "destination" => m.target = Some(val.to_string()),
            "readonly" | "ro" => m.read_only = Some(go_bool(val).ok_or_else(invalid)?),
            "consistency" => m.consistency = Some(val.to_lowercase()),
            "bind-propagation" => {
                let p = match val.to_lowercase().as_str() {
                    "private" => MountBindOptionsPropagationEnum::PRIVATE,
                    "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
                    "shared" => MountBindOptionsPropagationEnum::SHARED,
                    "rshared" => MountBindOptionsPropagationEnum::RSHARED,
                    "slave" => MountBindOptionsPropagationEnum::SLAVE,
                    "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
                    _ => MountBindOptionsPropagationEnum::EMPTY,
                };
                bind.get_or_insert_with(Default::default).propagation = Some(p);
            }
            "bind-nonrecursive" => {
                bind.get_or_insert_with(Default::default).non_recursive =
                    Some(go_bool(val).ok_or_else(invalid)?)
            }
            "bind-create-host-path" => {
                bind.get_or_insert_with(Default::default).create_mountpoint =
                    Some(go_bool(val).ok_or_else(invalid)?)
            }
            "volume-nocopy" => {
                vol_opts(&mut vol).no_copy = Some(
                    go_bool(val)
                        .ok_or_else(|| format!("invalid value for volume-nocopy: {val}"))?,
                )
            }
            "volume-subpath" => vol_opts(&mut vol).subpath = Some(val.to_string()),
            "volume-label" => {
                let (k, v) = val.split_once('=').unwrap_or((val, ""));
                if !k.is_empty() {
                    vol_opts(&mut vol)
                        .labels
                        .get_or_insert_with(HashMap::new)
                        .insert(k.into(), v.into());
                }
            }
            "volume-driver" => {
                if let Some(dc) = vol_opts(&mut vol).driver_config.as_mut() {
                    dc.name = Some(val.to_string());
                }
            }
            "volume-opt" => {
                let (k, v) = val.split_once('=').unwrap_or((val, ""));
                if let Some(dc) = vol_opts(&mut vol).driver_config.as_mut() {
                    let opts = dc.options.get_or_insert_with(HashMap::new);
                    if !k.is_empty() {
                        opts.insert(k.into(), v.into());
                    }
                }
            }
            "tmpfs-size" => {
                tmpfs.get_or_insert_with(Default::default).size_bytes =
                    Some(ram_in_bytes(val).map_err(|_| invalid())?)
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(val, 8).map_err(|_| invalid())?;
                tmpfs.get_or_insert_with(Default::default).mode = Some(mode as i64)
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if typ.is_empty() {
        return Err("type is required".into());
    }
    if m.target.as_deref().unwrap_or("").is_empty() {
        return Err("target is required".into());
    }
    if vol.is_some() && typ != "volume" {
        return Err(format!(
            "cannot mix 'volume-*' options with mount type '{typ}'"
        ));
    }
    if bind.is_some() && typ != "bind" {
        return Err(format!(
            "cannot mix 'bind-*' options with mount type '{typ}'"
        ));
    }
    if tmpfs.is_some() && typ != "tmpfs" {
        return Err(format!(
            "cannot mix 'tmpfs-*' options with mount type '{typ}'"
        ));
    }
    m.typ = Some(mount_type(&typ));
    m.volume_options = vol;
    m.bind_options = bind;
    m.tmpfs_options = tmpfs;
    Ok(MountSpec {
        mount: m,
        raw_type: typ,
    })
}

/// What a `-v` spec means: a bind or named volume (sent in `Binds`) or an anonymous volume
/// (sent in `Config.Volumes`).
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeSpec {
    Bind(String),
    Anonymous(String),
}

/// docker's `-v` handling (compose's volume-spec parser for the source, then the whole spec
/// as the daemon reads it).
pub fn volume(spec: &str) -> Result<VolumeSpec, String> {
    if spec.is_empty() {
        return Err("invalid empty volume spec".into());
    }
    if spec.len() <= 2 {
        return Ok(VolumeSpec::Anonymous(spec.to_string()));
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let source = if parts.len() >= 2 { parts[0] } else { "" };
    if parts.len() == 1 || source.is_empty() {
        if parts.iter().any(|p| p.is_empty()) && parts.len() > 1 {
            return Ok(VolumeSpec::Bind(spec.to_string()));
        }
        return Ok(VolumeSpec::Anonymous(spec.to_string()));
    }
    let is_path = matches!(source.as_bytes()[0], b'.' | b'/' | b'~');
    if is_path && source.starts_with('.') {
        let rest = &spec[source.len()..];
        let abs = std::env::current_dir()
            .map(|cwd| clean_path(&cwd.join(source).to_string_lossy()))
            .unwrap_or_else(|_| source.to_string());
        return Ok(VolumeSpec::Bind(format!("{abs}{rest}")));
    }
    Ok(VolumeSpec::Bind(spec.to_string()))
}

fn valid_device_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return false;
    }
    let mut seen = [false; 3];
    for c in mode.chars() {
        let i = match c {
            'r' => 0,
            'w' => 1,
            'm' => 2,
            _ => return false,
        };
        if seen[i] {
            return false;
        }
        seen[i] = true;
    }
    true
}

/// `--device host[:container[:perms]]`.
pub fn device(val: &str) -> Result<DeviceMapping, String> {
    if val.matches(':').count() > 2 {
        return Err(format!("bad format for path: {val}"));
    }
    let split: Vec<&str> = val.splitn(3, ':').collect();
    if split[0].is_empty() {
        return Err(format!("bad format for path: {val}"));
    }
    let container_path = match split.len() {
        1 => split[0],
        2 if valid_device_mode(split[1]) => split[0],
        2 => split[1],
        _ => {
            if !valid_device_mode(split[2]) {
                return Err(format!("bad mode specified: {}", split[2]));
            }
            split[1]
        }
    };
    if !container_path.starts_with('/') {
        return Err(format!("{container_path} is not an absolute path"));
    }
    let (src, mut dst, mut perms) = (split[0], String::new(), "rwm".to_string());
    if split.len() >= 2 {
        if valid_device_mode(split[1]) {
            perms = split[1].to_string();
        } else {
            dst = clean_path(split[1]);
        }
    }
    if split.len() == 3 {
        perms = split[2].to_string();
    }
    if dst.is_empty() {
        dst = if split.len() == 1 {
            clean_path(src)
        } else {
            src.to_string()
        };
    }
    let src = if split.len() == 1 {
        clean_path(src)
    } else {
        src.to_string()
    };
    Ok(DeviceMapping {
        path_on_host: Some(src),
        path_in_container: Some(dst),
        cgroup_permissions: Some(perms),
    })
}

/// Reads `--env-file`/`--label-file`: `KEY=value` lines, `#` comments; with `lookup`, a bare
/// `KEY` takes its value from this process's environment.
pub fn kv_file(path: &str, lookup: bool) -> Result<Vec<String>, String> {
    let text = std::fs::read(path).map_err(|e| format!("open {path}: {}", io_error_text(&e)))?;
    let text = String::from_utf8_lossy(&text);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, _)) => {
                if k.is_empty() {
                    return Err(format!("no variable name on line '{line}'"));
                }
                if k.contains(char::is_whitespace) {
                    return Err(format!("variable '{k}' contains whitespaces"));
                }
                out.push(line.to_string());
            }
            None => {
                let k = line.trim_end();
                if k.contains(char::is_whitespace) {
                    return Err(format!("variable '{k}' contains whitespaces"));
                }
                if lookup && let Ok(v) = std::env::var(k) {
                    out.push(format!("{k}={v}"));
                    continue;
                }
                out.push(k.to_string());
            }
        }
    }
    Ok(out)
}

/// Go's text for common I/O errors (`no such file or directory`).
pub fn io_error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "is a directory".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}

/// `--restart no|always|unless-stopped|on-failure[:N]` as (name, retries).
pub fn restart_policy(policy: &str) -> Result<(String, i64), String> {
    if policy.is_empty() {
        return Ok((String::new(), 0));
    }
    let (k, v) = match policy.split_once(':') {
        Some((k, v)) => (k, Some(v)),
        None => (policy, None),
    };
    if v.is_some() && k.is_empty() {
        return Err("invalid restart policy format: no policy provided before colon".into());
    }
    let mut count = 0;
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        count = v.parse::<i64>().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?;
    }
    Ok((k.to_string(), count))
}

/// docker 28 normalises capabilities: upper case, `CAP_` prefix (`ALL` stays).
pub fn capability(c: &str) -> String {
    let c = c.trim().to_uppercase();
    if c == "ALL" || c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

/// `--detach-keys`: `ctrl-p,ctrl-q` → bytes, as moby/term's `ToBytes`.
pub fn detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        let k = key.trim();
        if k.len() > 1 {
            let Some(c) = k.strip_prefix("ctrl-") else {
                return Err(format!("Unknown character: '{k}'"));
            };
            let b = c.as_bytes();
            if b.len() != 1 {
                return Err(format!("Unknown character: '{k}'"));
            }
            let code = match b[0] {
                b'a'..=b'z' => b[0] - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(format!("Unknown character: '{k}'")),
            };
            out.push(code);
        } else if let Some(&b) = k.as_bytes().first() {
            out.push(b);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
