use std::path::Path;

use anyhow::Context;
use libcontainer::signal::Signal;

use crate::cli::Kill;

pub fn kill(root: &Path, args: &Kill) -> anyhow::Result<()> {
    let signal = Signal::try_from(args.signal.as_str())
        .map_err(|_| anyhow::anyhow!("unknown signal {:?}", args.signal))?;
    let mut container = crate::state::load(root, &args.id)?;
    container
        .kill(signal, args.all)
        .with_context(|| format!("kill container {}", args.id))
}
