//! `berth volume inspect`: the daemon's JSON for each volume.
//!
//! docker runs `-f` templates on its typed `volume.Volume`, where a `null` map prints as
//! `map[]` and `Status` always exists; the raw JSON is made to read the same before a template
//! runs on it. Plain and `json` output stay the daemon's bytes.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::Value as Json;

use crate::commands::Ctx;
use crate::commands::inspect::{INSPECT_FORMAT_HELP, Inspector, fetch};
use crate::errors::Args;

#[derive(ClapArgs, Debug)]
pub struct InspectArgs {
    #[arg(short, long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    pub format: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

/// Empty maps where the daemon wrote `null` or nothing (Go's nil maps in the typed struct).
pub fn as_typed(raw: &str) -> String {
    let Ok(Json::Object(mut m)) = serde_json::from_str::<Json>(raw) else {
        return raw.to_string();
    };
    for key in ["Labels", "Options", "Status"] {
        let v = m.entry(key).or_insert(Json::Null);
        if v.is_null() {
            *v = Json::Object(serde_json::Map::new());
        }
    }
    Json::Object(m).to_string()
}

pub async fn run(a: InspectArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.volumes.len())?;
    let format = a.format.as_deref();
    let template = !matches!(format.unwrap_or(""), "" | "json");
    let mut inspector = Inspector::new(format)?;
    let client = ctx.client().await?;
    for name in &a.volumes {
        match fetch(client, "volume", name, false).await? {
            Ok(raw) if template => inspector.add(as_typed(&raw)),
            Ok(raw) => inspector.add(raw),
            Err(message) => inspector.error(format!("Error response from daemon: {message}")),
        }
    }
    inspector.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_maps_become_empty() {
        let raw = r#"{"Name":"x","Labels":null,"Options":{"a":"b"}}"#;
        assert_eq!(
            as_typed(raw),
            r#"{"Labels":{},"Name":"x","Options":{"a":"b"},"Status":{}}"#
        );
    }
}
