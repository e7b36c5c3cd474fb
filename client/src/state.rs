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
                writeln!(out, "  Created: {} (UTC seconds)", state.created)?;
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
