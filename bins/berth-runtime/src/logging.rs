//! `--log` and `--log-format`: where and how the runtime logs.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Logs at `warn` and above unless `RUST_LOG` says otherwise, to `log` or stderr.
/// libcgroups warns about every v1 controller the host lacks, so only its errors show.
pub fn init(log: Option<&Path>, format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,libcgroups=error"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (log, format) {
        (Some(path), format) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open log file {}", path.display()))?;
            let builder = builder.with_ansi(false).with_writer(Mutex::new(file));
            match format {
                LogFormat::Text => builder.init(),
                LogFormat::Json => builder.json().init(),
            }
        }
        (None, LogFormat::Text) => builder.with_writer(std::io::stderr).init(),
        (None, LogFormat::Json) => builder.with_writer(std::io::stderr).json().init(),
    }
    Ok(())
}
