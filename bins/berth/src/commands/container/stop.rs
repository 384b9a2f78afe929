//! `berth stop`.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::{for_each, parse};
use crate::commands::Ctx;
use crate::errors::Args;

#[derive(ClapArgs, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", alias = "time", value_name = "int", value_parser = parse::go_int, allow_hyphen_values = true)]
    pub timeout: Option<i64>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `?signal=…&t=…` for stop and restart (only what was given).
pub fn stop_query(signal: Option<&str>, timeout: Option<i64>) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(s) = signal.filter(|s| !s.is_empty()) {
        pairs.push(("signal", s.to_string()));
    }
    if let Some(t) = timeout {
        pairs.push(("t", t.to_string()));
    }
    let p: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    crate::client::query(&p)
}

pub async fn run(a: StopArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.containers.len())?;
    let q = stop_query(a.signal.as_deref(), a.timeout);
    for_each(ctx, &a.containers, "stop", &q).await
}
