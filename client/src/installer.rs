//! Installer mode: `moss -D ROOT install --to DIR NAME...` and `moss -D ROOT sync --to DIR`
//! compose a complete tree into DIR without recording a state (what installers such as lichen
//! do). Direct mode only: mossd never writes to a directory a caller names.

use std::{io::Write, path::Path};

use moss::requests::Change;

use crate::{
    backend::Backend,
    cli::{ChangeArguments, Format},
    confirm::confirm,
    packages::print_plan,
    state::eprintln_text,
};

pub async fn compose(
    backend: &Backend<'_>,
    change: Change,
    directory: &Path,
    arguments: &ChangeArguments,
    yes: bool,
) -> anyhow::Result<()> {
    let Backend::Direct(moss) = backend else {
        return Err(moss::EngineError::InvalidRequest(format!(
            "installer mode (--to {}) works on an installation directly, never through mossd: add -D ROOT (the installation whose repositories and store are used, such as -D /)",
            directory.display()
        ))
        .into());
    };
    let plan = moss.plan_change(&change).await?.unwrap_or_default();
    if arguments.format == Format::Human {
        eprintln_text(&format!(
            "Composing {} packages into {} (no state is recorded)",
            plan.selections.len(),
            directory.display()
        ))?;
    }
    // In JSON, one document: the plan for a dry run, else what was composed.
    let json = arguments.format == Format::Json;
    if (!json && !plan.is_empty()) || (json && arguments.dry_run) {
        print_plan(&plan, arguments.format)?;
    }
    if arguments.dry_run {
        return Ok(());
    }
    if !confirm("Proceed?", yes)? {
        eprintln_text("Cancelled; nothing was changed")?;
        return Ok(());
    }
    let composed = moss.compose_into(&plan, directory).await?;
    if arguments.format == Format::Json {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &composed)?;
        writeln!(stdout)?;
        return Ok(());
    }
    let failed = composed.triggers.iter().filter(|run| !run.success).count();
    eprintln_text(&format!(
        "Composed {} packages into {} ({} entries, {} trigger runs{}); no state was recorded",
        composed.packages,
        composed.directory.display(),
        composed.entries,
        composed.triggers.len(),
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        }
    ))
}
