//! `berth info` / `berth system info`: docker's report for the fields the daemon returns.

use std::fmt::Write as _;

use anyhow::Result;
use base64::Engine;
use clap::Args as ClapArgs;

use super::{GIT_COMMIT, VERSION, go_os_arch};
use crate::commands::inspect::INSPECT_FORMAT_HELP;
use crate::commands::{Ctx, out};
use crate::errors::CliError;
use crate::format::template::{Map, MapKind, Template, Value};
use crate::format::units::bytes_size;
use crate::reference::INDEX_SERVER;

#[derive(ClapArgs, Debug)]
pub struct InfoArgs {
    #[arg(short, long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    pub format: Option<String>,
}

fn client_info(debug: bool, api_version: Option<&str>) -> Value {
    let (os, arch) = go_os_arch();
    let mut m = Map::new(MapKind::Struct("*system.clientInfo".into()))
        .with("Debug", debug)
        .with("Version", VERSION);
    if let Some(v) = api_version {
        m.insert("ApiVersion", Value::Str(v.to_string()));
    }
    let m = m
        .with("DefaultAPIVersion", super::version::default_api_version())
        .with("GitCommit", GIT_COMMIT)
        .with("Os", os)
        .with("Arch", arch)
        .with("Context", "default")
        .with("Plugins", Value::List(Vec::new()))
        .with("Warnings", Value::Nil);
    Value::Map(m)
}

/// Go's `fmt.Println` of one value.
fn go(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Nil) => String::new(),
        Some(v) => v.print(),
    }
}

struct Report<'a> {
    info: &'a Value,
    text: String,
}

impl Report<'_> {
    fn line(&mut self, label: &str, key: &str) {
        let _ = writeln!(self.text, "{label} {}", go(self.info.get(key)));
    }

    fn non_empty(&mut self, label: &str, key: &str) {
        let v = go(self.info.get(key));
        if !v.is_empty() {
            let _ = writeln!(self.text, "{label} {v}");
        }
    }

    fn raw(&mut self, line: String) {
        self.text.push_str(&line);
        self.text.push('\n');
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::List(l)) => l.iter().map(Value::print).collect(),
        _ => Vec::new(),
    }
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::List(l)) => l
            .iter()
            .filter_map(|p| match p {
                Value::List(kv) if kv.len() >= 2 => Some((kv[0].print(), kv[1].print())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A security option's name and its `key=value` settings.
type SecurityOption = (String, Vec<(String, String)>);

/// `name=seccomp,profile=default` → ("seccomp", [("profile", "default")]).
fn security_options(opts: &[String]) -> Result<Vec<SecurityOption>, String> {
    let mut out = Vec::new();
    for opt in opts {
        if !opt.contains('=') {
            out.push((opt.clone(), Vec::new()));
            continue;
        }
        let mut name = String::new();
        let mut kvs = Vec::new();
        for part in opt.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("invalid security option {part:?}"))?;
            if k == "name" {
                name = v.to_string();
            } else {
                kvs.push((k.to_string(), v.to_string()));
            }
        }
        out.push((name, kvs));
    }
    Ok(out)
}

/// A registry CIDR: docker sends `"127.0.0.0/8"`; old daemons sent Go's `net.IPNet`
/// (`{"IP":"127.0.0.0","Mask":"/wAAAA=="}`).
fn cidr(v: &Value) -> String {
    if let Value::Str(s) = v {
        return s.clone();
    }
    let ip = v.str_at("IP");
    let bits: u32 = base64::engine::general_purpose::STANDARD
        .decode(v.str_at("Mask"))
        .map(|m| m.iter().map(|b| b.count_ones()).sum())
        .unwrap_or(0);
    format!("{ip}/{bits}")
}

/// docker's `prettyPrintServerInfo`: the report text, warnings (for stderr) and errors.
pub fn server_report(
    info: &Value,
    debug: bool,
    username: &str,
) -> (String, Vec<String>, Vec<String>) {
    let mut r = Report {
        info,
        text: String::new(),
    };
    let mut errors = Vec::new();
    r.line(" Containers:", "Containers");
    r.line("  Running:", "ContainersRunning");
    r.line("  Paused:", "ContainersPaused");
    r.line("  Stopped:", "ContainersStopped");
    r.line(" Images:", "Images");
    r.non_empty(" Server Version:", "ServerVersion");
    r.non_empty(" Storage Driver:", "Driver");
    for (k, v) in pairs(info.get("DriverStatus")) {
        r.raw(format!("  {k}: {v}"));
    }
    for (k, v) in pairs(info.get("SystemStatus")) {
        r.raw(format!(" {k}: {v}"));
    }
    r.non_empty(" Logging Driver:", "LoggingDriver");
    r.non_empty(" Cgroup Driver:", "CgroupDriver");
    r.non_empty(" Cgroup Version:", "CgroupVersion");
    let plugins = info.get("Plugins");
    r.raw(" Plugins:".into());
    r.raw(format!(
        "  Volume: {}",
        strings(plugins.and_then(|p| p.get("Volume"))).join(" ")
    ));
    r.raw(format!(
        "  Network: {}",
        strings(plugins.and_then(|p| p.get("Network"))).join(" ")
    ));
    let authz = strings(plugins.and_then(|p| p.get("Authorization")));
    if !authz.is_empty() {
        r.raw(format!("  Authorization: {}", authz.join(" ")));
    }
    r.raw(format!(
        "  Log: {}",
        strings(plugins.and_then(|p| p.get("Log"))).join(" ")
    ));
    let cdi = strings(info.get("CDISpecDirs"));
    if !cdi.is_empty() {
        r.raw(" CDI spec directories:".into());
        for d in cdi {
            r.raw(format!("  {d}"));
        }
    }
    let swarm = info.get("Swarm").cloned().unwrap_or(Value::Nil);
    let state = swarm.str_at("LocalNodeState").to_string();
    r.raw(format!(" Swarm: {state}"));
    if !state.is_empty() && state != "inactive" && state != "locked" {
        r.raw(format!("  NodeID: {}", swarm.str_at("NodeID")));
        if !swarm.str_at("Error").is_empty() {
            r.raw(format!("  Error: {}", swarm.str_at("Error")));
        }
        r.raw(format!(
            "  Is Manager: {}",
            go(swarm.get("ControlAvailable"))
        ));
        r.raw(format!("  Node Address: {}", swarm.str_at("NodeAddr")));
    }
    if let Some(Value::Map(runtimes)) = info.get("Runtimes")
        && !runtimes.entries.is_empty()
    {
        let names: Vec<&str> = runtimes.entries.iter().map(|(k, _)| k.as_str()).collect();
        r.raw(format!(" Runtimes: {}", names.join(" ")));
        r.line(" Default Runtime:", "DefaultRuntime");
    }
    if info.str_at("OSType") == "linux" {
        r.line(" Init Binary:", "InitBinary");
        let commit = |k: &str| {
            info.get(k)
                .map(|c| c.str_at("ID").to_string())
                .unwrap_or_default()
        };
        r.raw(format!(
            " containerd version: {}",
            commit("ContainerdCommit")
        ));
        r.raw(format!(" runc version: {}", commit("RuncCommit")));
        r.raw(format!(" init version: {}", commit("InitCommit")));
        let opts = strings(info.get("SecurityOptions"));
        if !opts.is_empty() {
            match security_options(&opts) {
                Ok(decoded) => {
                    r.raw(" Security Options:".into());
                    for (name, kvs) in decoded {
                        r.raw(format!("  {name}"));
                        for (k, v) in kvs {
                            if k == "profile" {
                                r.raw(format!("   Profile: {v}"));
                            }
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
    }
    if info.str_at("OSType") == "windows" {
        r.line(" Default Isolation:", "Isolation");
    }
    r.non_empty(" Kernel Version:", "KernelVersion");
    r.non_empty(" Operating System:", "OperatingSystem");
    r.non_empty(" OSType:", "OSType");
    r.non_empty(" Architecture:", "Architecture");
    r.line(" CPUs:", "NCPU");
    r.raw(format!(
        " Total Memory: {}",
        bytes_size(info.i64_at("MemTotal") as f64)
    ));
    r.non_empty(" Name:", "Name");
    r.non_empty(" ID:", "ID");
    r.line(" Docker Root Dir:", "DockerRootDir");
    r.line(" Debug Mode:", "Debug");
    if matches!(info.get("Debug"), Some(Value::Bool(true))) || debug {
        r.line("  File Descriptors:", "NFd");
        r.line("  Goroutines:", "NGoroutines");
        r.line("  System Time:", "SystemTime");
        r.line("  EventsListeners:", "NEventsListener");
    }
    r.non_empty(" HTTP Proxy:", "HttpProxy");
    r.non_empty(" HTTPS Proxy:", "HttpsProxy");
    r.non_empty(" No Proxy:", "NoProxy");
    if !username.is_empty() {
        r.raw(format!(" Username: {username}"));
    }
    let labels = strings(info.get("Labels"));
    if !labels.is_empty() {
        r.raw(" Labels:".into());
        for l in labels {
            r.raw(format!("  {l}"));
        }
    }
    r.line(" Experimental:", "ExperimentalBuild");
    if let Some(reg) = info
        .get("RegistryConfig")
        .filter(|v| matches!(v, Value::Map(_)))
    {
        let cidrs = reg.list_at("InsecureRegistryCIDRs");
        let indexes = match reg.get("IndexConfigs") {
            Some(Value::Map(m)) => m.entries.clone(),
            _ => Vec::new(),
        };
        if !cidrs.is_empty() || !indexes.is_empty() {
            r.raw(" Insecure Registries:".into());
            for (_, idx) in &indexes {
                if !matches!(idx.get("Secure"), Some(Value::Bool(true))) {
                    r.raw(format!("  {}", idx.str_at("Name")));
                }
            }
            for c in cidrs {
                r.raw(format!("  {}", cidr(c)));
            }
        }
        let mirrors = strings(reg.get("Mirrors"));
        if !mirrors.is_empty() {
            r.raw(" Registry Mirrors:".into());
            for m in mirrors {
                r.raw(format!("  {m}"));
            }
        }
    }
    r.line(" Live Restore Enabled:", "LiveRestoreEnabled");
    if !info.str_at("ProductLicense").is_empty() {
        r.line(" Product License:", "ProductLicense");
    }
    let pools = info.list_at("DefaultAddressPools");
    if !pools.is_empty() {
        r.raw(" Default Address Pools:".into());
        for p in pools {
            r.raw(format!(
                "   Base: {}, Size: {}",
                p.str_at("Base"),
                go(p.get("Size"))
            ));
        }
    }
    r.text.push('\n');
    (r.text, strings(info.get("Warnings")), errors)
}

pub async fn run(a: InfoArgs, ctx: &Ctx) -> Result<()> {
    let format = a.format.clone().filter(|f| !f.is_empty());
    let server: Result<Value, CliError> = match ctx.client().await {
        Ok(client) => client.get_value("/info").await.map(|(_, v)| v),
        Err(e) => Err(e),
    };
    let api_version = ctx.client().await.ok().map(|c| c.api_version.clone());
    if let Some(f) = format {
        let text = if f == "json" {
            "{{json .}}".to_string()
        } else {
            f
        };
        let tmpl = Template::parse(&text)
            .map_err(|e| CliError::new(64, format!("template parsing error: {e}")))?;
        let mut data = match &server {
            Ok(Value::Map(m)) => Map {
                kind: MapKind::Struct("system.dockerInfo".into()),
                entries: m.entries.clone(),
            },
            _ => Map::new(MapKind::Struct("system.dockerInfo".into())),
        };
        if let Err(e) = &server {
            eprintln!("{}", e.message);
            data.insert(
                "ServerErrors",
                Value::List(vec![Value::Str(e.message.clone())]),
            );
        }
        data.insert("ClientInfo", client_info(ctx.debug, api_version.as_deref()));
        let result = tmpl.execute(&Value::Map(data));
        out(&format!("{}\n", result.as_deref().unwrap_or("")))?;
        return result
            .map(|_| ())
            .map_err(|e| CliError::msg(e.to_string()).into());
    }

    let mut text = String::from("Client:\n");
    let _ = writeln!(text, " Version:    {VERSION}");
    let _ = writeln!(text, " Context:    default");
    let _ = writeln!(text, " Debug Mode: {}", ctx.debug);
    text.push_str("\nServer:\n");
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut failure = None;
    match server {
        Ok(info) => {
            let username = ctx
                .config()
                .ok()
                .and_then(|c| {
                    if c.uses_helper(INDEX_SERVER) {
                        None
                    } else {
                        c.get_auth(INDEX_SERVER).ok()
                    }
                })
                .map(|a| a.username)
                .unwrap_or_default();
            let (report, w, e) = server_report(&info, ctx.debug, &username);
            text.push_str(&report);
            warnings = w;
            errors = e;
        }
        // Like docker, a daemon that cannot be reached fails the command with its own message.
        Err(e) => failure = Some(e),
    }
    out(&text)?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    for w in warnings {
        eprintln!("{w}");
    }
    for e in &errors {
        eprintln!("ERROR: {e}");
    }
    if !errors.is_empty() {
        return Err(CliError::msg("errors pretty printing info").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_layout() {
        let info = Value::from_json(
            r#"{"ID":"U7DN","Containers":0,"ContainersRunning":0,"ContainersPaused":0,"ContainersStopped":0,"Images":1,
            "Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"]],"Plugins":{"Volume":["local"],"Network":["bridge","host"],"Authorization":null,"Log":["json-file"]},
            "MemTotal":25275000000,"NCPU":2,"LoggingDriver":"json-file","CgroupDriver":"cgroupfs","CgroupVersion":"1","KernelVersion":"6.1","OperatingSystem":"Debian","OSType":"linux","Architecture":"x86_64",
            "DockerRootDir":"/var/lib/berth","Debug":false,"ExperimentalBuild":false,"LiveRestoreEnabled":false,"ServerVersion":"0.1.0","Name":"vm",
            "Runtimes":{"runc":{"path":"runc"}},"DefaultRuntime":"runc","Swarm":{"LocalNodeState":"inactive"},"InitBinary":"docker-init",
            "ContainerdCommit":{"ID":"c1"},"RuncCommit":{"ID":"r1"},"InitCommit":{"ID":""},"SecurityOptions":["name=seccomp,profile=default","name=cgroupns"],
            "RegistryConfig":{"InsecureRegistryCIDRs":["127.0.0.0/8",{"IP":"10.0.0.0","Mask":"/wAAAA=="}],"IndexConfigs":{"docker.io":{"Name":"docker.io","Secure":true}},"Mirrors":[]},
            "Warnings":["WARNING: No swap limit support"]}"#,
        )
        .unwrap();
        let (text, warnings, errors) = server_report(&info, false, "");
        assert!(errors.is_empty());
        assert_eq!(warnings, vec!["WARNING: No swap limit support".to_string()]);
        let want = " Containers: 0\n  Running: 0\n  Paused: 0\n  Stopped: 0\n Images: 1\n Server Version: 0.1.0\n Storage Driver: overlay2\n  Backing Filesystem: extfs\n Logging Driver: json-file\n Cgroup Driver: cgroupfs\n Cgroup Version: 1\n Plugins:\n  Volume: local\n  Network: bridge host\n  Log: json-file\n Swarm: inactive\n Runtimes: runc\n Default Runtime: runc\n Init Binary: docker-init\n containerd version: c1\n runc version: r1\n init version: \n Security Options:\n  seccomp\n   Profile: default\n  cgroupns\n Kernel Version: 6.1\n Operating System: Debian\n OSType: linux\n Architecture: x86_64\n CPUs: 2\n Total Memory: 23.54GiB\n Name: vm\n ID: U7DN\n Docker Root Dir: /var/lib/berth\n Debug Mode: false\n Experimental: false\n Insecure Registries:\n  127.0.0.0/8\n  10.0.0.0/8\n Live Restore Enabled: false\n\n";
        assert_eq!(text, want);
    }
}
