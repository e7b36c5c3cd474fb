//! `moss extract FILE [--to DIR]`.

use std::io::Write;

use crate::cli::ExtractArguments;

pub fn run(arguments: &ExtractArguments) -> anyhow::Result<()> {
    let summary = moss::extract::extract(&arguments.file, arguments.to.as_deref())?;
    // A summary is talk, not data: stderr.
    let mut stderr = std::io::stderr().lock();
    writeln!(
        stderr,
        "Extracted {} into {}: {} files ({} bytes), {} symlinks, {} directories",
        summary.package.meta_id(),
        summary.destination.display(),
        summary.files,
        summary.bytes,
        summary.symlinks,
        summary.directories,
    )?;
    Ok(())
}
