use std::io::Write;
use std::path::Path;

use crate::cli::{List, ListFormat};
use crate::state::RuncState;

pub fn list(root: &Path, args: &List) -> anyhow::Result<()> {
    let states: Vec<RuncState> = crate::state::list(root)?
        .iter()
        .map(RuncState::of)
        .collect();
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for state in &states {
            writeln!(out, "{}", state.id)?;
        }
        return Ok(());
    }
    if args.format == ListFormat::Json {
        writeln!(out, "{}", serde_json::to_string(&states)?)?;
        return Ok(());
    }
    let mut table = tabwriter::TabWriter::new(out).padding(3);
    writeln!(table, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")?;
    for s in &states {
        writeln!(
            table,
            "{}\t{}\t{}\t{}\t{}\t{}",
            s.id,
            s.pid,
            s.status,
            s.bundle.display(),
            s.created,
            s.owner
        )?;
    }
    table.flush()?;
    Ok(())
}
