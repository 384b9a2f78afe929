use std::path::Path;

use anyhow::Context;

use crate::cli::Delete;

pub fn delete(root: &Path, args: &Delete) -> anyhow::Result<()> {
    let mut container = crate::state::load(root, &args.id)?;
    container
        .delete(args.force)
        .with_context(|| format!("delete container {}", args.id))
}
