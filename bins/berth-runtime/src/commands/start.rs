use std::path::Path;

use anyhow::Context;

pub fn start(root: &Path, id: &str) -> anyhow::Result<()> {
    let mut container = crate::state::load(root, id)?;
    container
        .start()
        .with_context(|| format!("start container {id}"))
}
