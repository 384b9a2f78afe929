use std::path::Path;

use anyhow::Context;

pub fn start(root: &Path, id: &str) -> anyhow::Result<()> {
    let mut container = crate::state::load(root, id)?;
    container
        .start()
        .with_context(|| format!("start container {id}"))
}

pub fn pause(root: &Path, id: &str) -> anyhow::Result<()> {
    let mut container = crate::state::load(root, id)?;
    container
        .pause()
        .with_context(|| format!("pause container {id}"))
}

pub fn resume(root: &Path, id: &str) -> anyhow::Result<()> {
    let mut container = crate::state::load(root, id)?;
    container
        .resume()
        .with_context(|| format!("resume container {id}"))
}
