use std::path::Path;

use crate::state::RuncState;

pub fn state(root: &Path, id: &str) -> anyhow::Result<()> {
    let container = crate::state::load(root, id)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&RuncState::of(&container))?
    );
    Ok(())
}
