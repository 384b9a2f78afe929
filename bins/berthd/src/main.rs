//! berthd: serves the Docker Engine API on unix and TCP sockets.

mod api_error;
mod config;
mod ordered_json;
mod query;
mod routes;
mod server;

use std::sync::Arc;

use anyhow::Context;
use axum::ServiceExt;
use axum::extract::Request;
use berth_engine::containers::microvm::VmSettings;
use berth_engine::{Engine, EngineConfig};
use berth_shim::vm::{VmAccel, VmmKind};
use clap::Parser;
use tower::Layer;

use config::{Flags, Listen, Settings, parse_host};

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_flags(Flags::parse())?;
    init_logging(&settings.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(settings))
}

/// Writes our PID, refusing to start when the file names a live berthd (as dockerd does).
fn claim_pidfile(path: &std::path::Path) -> anyhow::Result<()> {
    if let Ok(old) = std::fs::read_to_string(path)
        && let Ok(pid) = old.trim().parse::<u32>()
        && pid != std::process::id()
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "berthd")
    {
        anyhow::bail!(
            "pid file found, ensure berthd is not running or delete {} (process {pid})",
            path.display()
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, std::process::id().to_string())
        .with_context(|| format!("writing {}", path.display()))
}

fn init_logging(level: &str) {
    let level = match level {
        "fatal" | "panic" => "error",
        other => other,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},h2=warn,hyper=warn,reqwest=warn,rustls=warn"
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The micro-VM runtime's settings: Firecracker when it is configured and KVM really
/// works, else QEMU (with KVM or TCG as detected, or as asked).
fn vm_settings(flags: &config::VmFlags, log_level: &str) -> VmSettings {
    let kvm = berth_vm::vmm::Accel::detect() == berth_vm::vmm::Accel::Kvm;
    let (vmm, vmm_binary) = match &flags.firecracker {
        Some(firecracker) if kvm => (VmmKind::Firecracker, firecracker.clone()),
        _ => (
            VmmKind::Qemu,
            flags
                .qemu
                .clone()
                .unwrap_or_else(|| "qemu-system-x86_64".into()),
        ),
    };
    if flags.firecracker.is_some() && !kvm {
        tracing::warn!("firecracker is configured but KVM does not work here: micro-VMs use QEMU");
    }
    let mut settings = VmSettings {
        kernel: flags.kernel.clone(),
        modules: flags.modules.clone(),
        init: flags.init.clone(),
        vmm,
        vmm_binary,
        accel: match flags.accel.as_deref() {
            Some("kvm") => Some(VmAccel::Kvm),
            Some("tcg") => Some(VmAccel::Tcg),
            _ => None,
        },
        guest_debug: matches!(log_level, "debug" | "trace"),
        ..VmSettings::default()
    };
    if let Some(secs) = flags.boot_timeout {
        settings.boot_timeout = std::time::Duration::from_secs(secs);
    }
    settings
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.exec_root)
        .with_context(|| format!("creating {}", settings.exec_root.display()))?;
    if let Some(pidfile) = &settings.pidfile {
        claim_pidfile(pidfile)?;
    }
    let engine = Engine::open(EngineConfig {
        data_root: settings.data_root.clone(),
        exec_root: settings.exec_root.clone(),
        insecure_registries: settings.insecure_registries.clone(),
        labels: settings.labels.clone(),
        shim_binary: sibling_binary("berth-shim"),
        init_binary: Some(install_init(&settings.exec_root)?),
        default_runtime: settings.default_runtime.clone(),
        vm: vm_settings(&settings.vm, &settings.log_level),
    })
    .map_err(|e| {
        anyhow::anyhow!(
            "opening the engine at {}: {e}",
            settings.data_root.display()
        )
    })?;
    let engine = Arc::new(engine);
    engine.containers().restore().await;
    let router = routes::router(engine).fallback(server::not_found);
    let app = axum::middleware::from_fn(server::version_prefix).layer(router);

    let mut servers = tokio::task::JoinSet::new();
    let mut sockets = Vec::new();
    for host in &settings.hosts {
        match parse_host(host)? {
            Listen::Unix(path) => {
                let listener = server::bind_unix(&path)?;
                sockets.push(path.clone());
                let app = app.clone();
                servers.spawn(async move {
                    axum::serve(listener, ServiceExt::<Request>::into_make_service(app)).await
                });
            }
            Listen::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("binding tcp://{addr}"))?;
                if !listener.local_addr()?.ip().is_loopback() {
                    tracing::warn!(%addr, "API listening on a non-loopback TCP address without TLS: anyone who can reach it is root");
                }
                let app = app.clone();
                servers.spawn(async move {
                    axum::serve(listener, ServiceExt::<Request>::into_make_service(app)).await
                });
            }
        }
        tracing::info!(%host, "API listening");
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), data_root = %settings.data_root.display(), "berthd started");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let result = tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = term.recv() => Ok(()),
        r = servers.join_next() => match r {
            Some(Ok(Err(e))) => Err(anyhow::anyhow!("API server failed: {e}")),
            Some(Err(e)) => Err(anyhow::anyhow!("API server task failed: {e}")),
            _ => Ok(()),
        },
    };
    tracing::info!("berthd stopping");
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    if let Some(pidfile) = &settings.pidfile {
        let _ = std::fs::remove_file(pidfile);
    }
    result
}

/// A helper binary installed beside berthd (as cargo builds them), else from `PATH`.
fn sibling_binary(name: &str) -> std::path::PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)));
    match beside {
        Some(path) if path.exists() => path,
        _ => std::path::PathBuf::from(name),
    }
}

/// The static `--init` built into this binary, written out under the exec root.
fn install_init(exec_root: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    const INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/docker-init"));
    use std::os::unix::fs::PermissionsExt;
    let path = exec_root.join("docker-init");
    if std::fs::read(&path).ok().as_deref() != Some(INIT) {
        let tmp = exec_root.join("docker-init.tmp");
        std::fs::write(&tmp, INIT).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}
