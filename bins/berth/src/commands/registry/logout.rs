//! `berth logout [SERVER]`.

use anyhow::Result;
use clap::Args as ClapArgs;

use crate::commands::{Ctx, out};
use crate::errors::Args;
use crate::reference::{INDEX_SERVER, convert_to_hostname};

#[derive(ClapArgs, Debug)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub server: Vec<String>,
}

/// The config keys a logout erases: the address as given, and for other registries than
/// Docker Hub the forms older clients stored (`host`, `http://host`, `https://host`).
pub fn logout_keys(server: Option<&str>) -> (String, Vec<String>) {
    match server.filter(|s| !s.is_empty()) {
        None => (INDEX_SERVER.to_string(), vec![INDEX_SERVER.to_string()]),
        Some(s) => {
            let host = convert_to_hostname(s);
            let mut keys = vec![s.to_string()];
            for k in [
                host.clone(),
                format!("http://{host}"),
                format!("https://{host}"),
            ] {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            (host, keys)
        }
    }
}

pub async fn run(a: LogoutArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Max(1), a.server.len())?;
    let (shown, keys) = logout_keys(a.server.first().map(String::as_str));
    out(&format!("Removing login credentials for {shown}\n"))?;
    let mut config = ctx.config()?;
    let mut errors = Vec::new();
    for key in &keys {
        if let Err(e) = config.erase_auth(key) {
            errors.push(format!("{key}: {e:#}"));
        }
    }
    if errors.len() == keys.len() {
        eprintln!("WARNING: could not erase credentials:");
        for e in errors {
            eprintln!("{e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            logout_keys(None),
            (INDEX_SERVER.to_string(), vec![INDEX_SERVER.to_string()])
        );
        let (shown, keys) = logout_keys(Some("https://reg:5000/v2/"));
        assert_eq!(shown, "reg:5000");
        assert_eq!(
            keys,
            vec![
                "https://reg:5000/v2/",
                "reg:5000",
                "http://reg:5000",
                "https://reg:5000"
            ]
        );
    }
}
