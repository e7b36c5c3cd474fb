//! `moss state ...` and `moss cache prune`.

use std::{io::Write, path::PathBuf};

use moss::{queries::StateSummary, requests::Change, state_query::StateDetails};
use moss_types::time::format_utc;

use crate::{
    backend::Backend,
    cli::{Format, StateCommand},
    confirm::confirm,
};

pub async fn run(backend: &Backend<'_>, command: &StateCommand, yes: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let change = match command {
        StateCommand::List(arguments) => {
            let states = backend.states().await?;
            return print_states(&mut stdout, &states, arguments.format);
        }
        StateCommand::Active(arguments) => {
            let states: Vec<StateSummary> = backend
                .states()
                .await?
                .into_iter()
                .filter(|state| state.active)
                .collect();
            match arguments.format {
                Format::Json => {
                    serde_json::to_writer_pretty(&mut stdout, &states.first())?;
                    writeln!(stdout)?;
                }
                Format::Human if states.is_empty() => eprintln_text("No active state")?,
                Format::Human => print_states(&mut stdout, &states, Format::Human)?,
            }
            return Ok(());
        }
        StateCommand::Query { id, format } => {
            let details = backend.state_details(*id).await?;
            return print_details(&mut stdout, &details, *format);
        }
        StateCommand::Export { id, output } => {
            let text = backend.state_model(*id).await?;
            let path = match output {
                None => return Ok(stdout.write_all(text.as_bytes())?),
                Some(Some(path)) => path.clone(),
                Some(None) => default_export_name(backend, *id).await?,
            };
            std::fs::write(&path, &text).map_err(|error| {
                anyhow::anyhow!(
                    "Cannot write the system model to {}: {error}",
                    path.display()
                )
            })?;
            return eprintln_text(&format!("Wrote {}", path.display()));
        }
        StateCommand::Activate {
            id,
            skip_triggers,
            skip_boot,
        } => Change::StateActivate {
            id: *id,
            skip_triggers: *skip_triggers,
            skip_boot: *skip_boot,
        },
        StateCommand::Prune {
            keep,
            include_newer,
        } => {
            if !confirm(
                &format!("Remove all but the newest {keep} older states?"),
                yes,
            )? {
                return Ok(());
            }
            Change::StatePrune {
                keep: *keep as u64,
                include_newer: *include_newer,
            }
        }
        StateCommand::Remove { ids } => {
            let mut ids: Vec<u64> = ids.iter().flat_map(|range| range.0.clone()).collect();
            ids.sort_unstable();
            ids.dedup();
            let listed: Vec<String> = ids.iter().map(u64::to_string).collect();
            if !confirm(&format!("Remove states {}?", listed.join(", ")), yes)? {
                return Ok(());
            }
            Change::StateRemove { ids }
        }
        StateCommand::Verify { fix, format } => {
            let issues = backend.verify().await?;
            match format {
                Format::Json => {
                    serde_json::to_writer_pretty(&mut stdout, &issues)?;
                    writeln!(stdout)?;
                }
                Format::Human => {
                    for issue in &issues {
                        let scope = issue
                            .state
                            .map_or_else(|| "store".to_owned(), |id| format!("state {id}"));
                        writeln!(stdout, "{scope}: {} {}", issue.path, issue.problem)?;
                    }
                }
            }
            if issues.is_empty() && !*fix {
                return eprintln_text("Verified: no problems found");
            }
            if !*fix {
                anyhow::bail!(
                    "{} problems found; run {} to repair them",
                    issues.len(),
                    moss::hint::moss("state verify --fix")
                );
            }
            Change::Repair
        }
    };
    let outcome = backend.perform(change).await?;
    eprintln_text(&outcome.message)
}

pub async fn cache_prune(backend: &Backend<'_>) -> anyhow::Result<()> {
    let outcome = backend.perform(Change::CachePrune).await?;
    eprintln_text(&outcome.message)
}

fn print_states(
    out: &mut impl Write,
    reports: &[StateSummary],
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, reports)?;
            writeln!(out)?;
        }
        Format::Human => {
            for state in reports {
                let marker = if state.active { " (active)" } else { "" };
                writeln!(out, "State #{} - {}{marker}", state.id, state.summary)?;
                writeln!(out, "  Created: {}", format_utc(state.created))?;
                writeln!(out, "  Packages: {}", state.packages)?;
            }
        }
    }
    Ok(())
}

fn print_details(
    out: &mut impl Write,
    details: &StateDetails,
    format: Format,
) -> anyhow::Result<()> {
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut *out, details)?;
        writeln!(out)?;
        return Ok(());
    }
    let marker = if details.active { " (active)" } else { "" };
    writeln!(out, "State #{}{marker}", details.id)?;
    writeln!(out, "  Created: {}", format_utc(details.created))?;
    writeln!(out, "  Kind: {}", details.kind)?;
    if let Some(description) = &details.description {
        writeln!(out, "  Description: {description}")?;
    }
    writeln!(out, "  Packages ({}):", details.packages.len())?;
    for package in &details.packages {
        let explicit = if package.explicit { " (explicit)" } else { "" };
        writeln!(
            out,
            "    {} {}-{}-{}{explicit}",
            package.name, package.version, package.release, package.build_release
        )?;
    }
    if details.boot_entries.is_empty() {
        writeln!(out, "  Boot entries: none (no kernel)")?;
    } else {
        writeln!(out, "  Boot entries:")?;
        for entry in &details.boot_entries {
            writeln!(out, "    {} (kernel {})", entry.file, entry.kernel)?;
        }
    }
    Ok(())
}

pub fn eprintln_text(text: &str) -> anyhow::Result<()> {
    writeln!(std::io::stderr(), "{text}")?;
    Ok(())
}

/// Upstream's name for `state export -o` without a path: `system-model-HOST-fstxn-ID.kdl` in
/// the current directory, ID being the exported state (the active one when none is named).
async fn default_export_name(backend: &Backend<'_>, id: Option<u64>) -> anyhow::Result<PathBuf> {
    let id = match id {
        Some(id) => id,
        None => backend
            .states()
            .await?
            .into_iter()
            .find(|state| state.active)
            .map(|state| state.id)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "No active state to name the export after: name a state (`moss state export ID -o`) or a file (`-o PATH`)"
                )
            })?,
    };
    let host = nix::unistd::gethostname()
        .map_err(|error| anyhow::anyhow!("Cannot read the host name for the export's file name: {error}; name the file with `-o PATH`"))?;
    Ok(PathBuf::from(format!(
        "system-model-{}-fstxn-{id}.kdl",
        host.to_string_lossy()
    )))
}
