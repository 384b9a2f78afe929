use std::path::Path;

use anyhow::Context;

use crate::cli::Run;
use crate::foreground::Foreground;

/// Creates and starts the container; in the foreground, waits for it, deletes it and
/// returns its exit code (128 + signal when it was killed), as runc does.
pub fn run(root: &Path, args: &Run) -> anyhow::Result<u8> {
    let id = &args.create.id;
    if args.create.control_fd.is_some() {
        anyhow::bail!("--control-fd is for create only");
    }
    let mut container = super::create::create(root, &args.create, args.detach)?;
    if args.detach {
        container
            .start()
            .with_context(|| format!("start container {id}"))?;
        return Ok(0);
    }
    let pid = container
        .pid()
        .with_context(|| format!("container {id} has no init process"))?;
    // Signals are blocked only now: the container's process was forked in `create`
    // and keeps the default mask.
    let foreground = Foreground::block_signals()?;
    let code = match container.start() {
        Ok(()) => foreground.wait(pid.as_raw()),
        Err(err) => Err(anyhow::Error::new(err).context(format!("start container {id}"))),
    };
    if let Err(err) = super::delete::remove(&mut container, true) {
        tracing::error!(id, "delete container after run: {err:#}");
    }
    code
}
