//! `moss state ...` and `moss cache prune`.

use std::{io::Write, path::PathBuf};

use moss::{queries::StateSummary, requests::Change, state_query::StateDetails};

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
                writeln!(out, "  Created: {}", utc(state.created))?;
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
    writeln!(out, "  Created: {}", utc(details.created))?;
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

/// `YYYY-MM-DD HH:MM:SS UTC` from Unix seconds (civil calendar, no time-zone database needed).
fn utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
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

#[cfg(test)]
mod tests {
    #[test]
    fn utc_renders_civil_time() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_795_807_898), "2026-11-27 19:31:38 UTC");
    }
}
