//! `moss state ...` and `moss cache prune`.

use std::io::Write;

use moss::{Moss, db::State};
use serde::Serialize;

use crate::{
    cli::{Format, StateCommand},
    confirm::confirm,
};

#[derive(Serialize)]
struct StateReport<'a> {
    id: u64,
    created: i64,
    summary: &'a str,
    description: Option<&'a str>,
    packages: usize,
    active: bool,
}

fn report<'a>(state: &'a State, active: Option<u64>) -> StateReport<'a> {
    StateReport {
        id: state.id,
        created: state.created,
        summary: &state.summary,
        description: state.description.as_deref(),
        packages: state.selections.len(),
        active: Some(state.id) == active,
    }
}

pub async fn run(moss: &Moss, command: &StateCommand, yes: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let active = moss.active_state();
    match command {
        StateCommand::List(arguments) => {
            let states = moss.states().await?;
            let reports: Vec<_> = states
                .iter()
                .rev()
                .map(|state| report(state, active))
                .collect();
            print_states(&mut stdout, &reports, arguments.format)?;
        }
        StateCommand::Active(arguments) => {
            let states = moss.states().await?;
            let reports: Vec<_> = states
                .iter()
                .filter(|state| Some(state.id) == active)
                .map(|state| report(state, active))
                .collect();
            match arguments.format {
                Format::Json => {
                    serde_json::to_writer_pretty(&mut stdout, &reports.first())?;
                    writeln!(stdout)?;
                }
                Format::Human if reports.is_empty() => eprintln_text("No active state")?,
                Format::Human => print_states(&mut stdout, &reports, Format::Human)?,
            }
        }
        StateCommand::Activate { id } => {
            let switch = moss.activate(*id).await?;
            eprintln_text(&format!(
                "State {} activated{}",
                switch.state,
                switch
                    .previous
                    .map(|previous| format!(" ({previous} archived)"))
                    .unwrap_or_default()
            ))?;
        }
        StateCommand::Prune { keep } => {
            if !confirm(
                &format!("Remove all but the newest {keep} older states?"),
                yes,
            )? {
                return Ok(());
            }
            let pruned = moss.prune(*keep).await?;
            summarise_prune(&pruned)?;
        }
        StateCommand::Remove { ids } => {
            if !confirm(&format!("Remove states {ids:?}?"), yes)? {
                return Ok(());
            }
            let pruned = moss.remove_states(ids).await?;
            summarise_prune(&pruned)?;
        }
        StateCommand::Verify { fix, format } => {
            let issues = moss.verify().await?;
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
            if issues.is_empty() {
                eprintln_text("Verified: no problems found")?;
            } else if *fix {
                moss.repair(&issues).await?;
                eprintln_text(&format!("Repaired {} problems", issues.len()))?;
            } else {
                anyhow::bail!(
                    "{} problems found; run `moss state verify --fix` to repair them",
                    issues.len()
                );
            }
        }
    }
    Ok(())
}

pub async fn cache_prune(moss: &Moss) -> anyhow::Result<()> {
    let pruned = moss.collect_garbage().await?;
    summarise_prune(&pruned)
}

fn summarise_prune(pruned: &moss::state::Pruned) -> anyhow::Result<()> {
    eprintln_text(&format!(
        "Removed {} states, {} unused packages, {} files",
        pruned.states.len(),
        pruned.packages,
        pruned.files
    ))
}

fn print_states(
    out: &mut impl Write,
    reports: &[StateReport<'_>],
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

#[cfg(test)]
mod tests {
    #[test]
    fn utc_renders_civil_time() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_795_807_898), "2026-11-27 19:31:38 UTC");
    }
}
