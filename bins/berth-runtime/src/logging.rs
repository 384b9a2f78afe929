//! `--log` and `--log-format`: where and how the runtime logs.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::LogFormat;

/// Logs at `warn` and above unless `RUST_LOG` says otherwise (`target=level,…`), to
/// `log` or stderr. libcgroups warns about every v1 controller the host lacks, so only
/// its errors show. A target filter rather than tracing-subscriber's `EnvFilter`, whose
/// directive parser compiles regular expressions: ~0.5 ms on every runtime command,
/// and the shim runs one per container start.
pub fn init(log: Option<&Path>, format: LogFormat) -> anyhow::Result<()> {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            Targets::new()
                .with_default(LevelFilter::WARN)
                .with_target("libcgroups", LevelFilter::ERROR)
        });
    let layer = tracing_subscriber::fmt::layer();
    let registry = tracing_subscriber::registry().with(filter);
    match (log, format) {
        (Some(path), format) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open log file {}", path.display()))?;
            let layer = layer.with_ansi(false).with_writer(Mutex::new(file));
            match format {
                LogFormat::Text => registry.with(layer).init(),
                LogFormat::Json => registry.with(layer.json()).init(),
            }
        }
        (None, LogFormat::Text) => registry.with(layer.with_writer(std::io::stderr)).init(),
        (None, LogFormat::Json) => registry
            .with(layer.with_writer(std::io::stderr).json())
            .init(),
    }
    Ok(())
}
