//! `berth logs`: `GET /containers/ID/logs`, raw for TTY containers, else demultiplexed.

use std::io::Write;

use anyhow::Result;
use clap::Args as ClapArgs;
use tokio::io::AsyncReadExt;

use super::conn::{Endpoint, daemon_error};
use super::hijack::demux;
use super::{container_path, get_json};
use crate::commands::Ctx;
use crate::commands::system::events::get_timestamp;
use crate::errors::{Args, CliError};
use crate::format::time::local_offset_secs;

#[derive(ClapArgs, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: Vec<String>,
}

/// The query of `GET /containers/ID/logs`.
pub fn logs_query(a: &LogsArgs, now: i64, offset: i32) -> Result<String, String> {
    let mut q: Vec<(&str, String)> = vec![("stdout", "1".into()), ("stderr", "1".into())];
    if let Some(s) = a.since.as_deref().filter(|s| !s.is_empty()) {
        q.push(("since", get_timestamp(s, now, offset)?));
    }
    if let Some(u) = a.until.as_deref().filter(|s| !s.is_empty()) {
        q.push(("until", get_timestamp(u, now, offset)?));
    }
    if a.timestamps {
        q.push(("timestamps", "1".into()));
    }
    if a.details {
        q.push(("details", "1".into()));
    }
    if a.follow {
        q.push(("follow", "1".into()));
    }
    q.push(("tail", a.tail.clone()));
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(crate::client::query(&pairs))
}

pub async fn run(a: LogsArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Exact(1), a.container.len())?;
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let c = get_json(&ep, &format!("{}/json", container_path(&a.container[0]))).await?;
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let q = logs_query(&a, chrono::Utc::now().timestamp(), local_offset_secs())
        .map_err(CliError::msg)?;
    let path = format!("{}/logs{q}", container_path(&a.container[0]));
    // Stream the body as it comes (`-f`): read the head, then copy.
    let resp = crate::client::raw::send(&ep.host, http::Method::GET, &ep.path(&path), &[], None)
        .await
        .map_err(|_| crate::client::cannot_connect(&ep.host))?;
    let status = resp.status();
    let mut body = tokio_util::io::StreamReader::new(
        http_body_util::BodyStream::new(resp.into_body()).filter_map_frames(),
    );
    if !status.is_success() {
        let mut buf = Vec::new();
        let _ = body.read_to_end(&mut buf).await;
        return Err(daemon_error(&buf).into());
    }
    let mut pending = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    loop {
        let n = body.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        if tty {
            write_to(false, &chunk[..n]);
            continue;
        }
        pending.extend_from_slice(&chunk[..n]);
        for (stream, data) in demux(&mut pending) {
            write_to(stream == 2, &data);
        }
    }
    Ok(())
}

fn write_to(stderr: bool, data: &[u8]) {
    if stderr {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(data);
        let _ = e.flush();
    } else {
        let mut o = std::io::stdout().lock();
        if let Err(e) = o.write_all(data).and_then(|_| o.flush())
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            std::process::exit(0);
        }
    }
}

trait FramesToData {
    fn filter_map_frames(
        self,
    ) -> std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send>>;
}

impl<S> FramesToData for S
where
    S: futures::Stream<Item = Result<hyper::body::Frame<bytes::Bytes>, hyper::Error>>
        + Send
        + 'static,
{
    fn filter_map_frames(
        self,
    ) -> std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send>> {
        use futures::StreamExt;
        Box::pin(self.filter_map(|f| async move {
            match f {
                Ok(frame) => frame.into_data().ok().map(Ok),
                Err(e) => Some(Err(std::io::Error::other(e))),
            }
        }))
    }
}
