//! Installer mode (`moss -D ROOT install --to DIR`, `sync --to DIR`): compose the complete tree
//! of a plan into a directory, as installers such as lichen do, without recording a state. The
//! installation at ROOT lends its repositories, cache and store; DIR receives `usr/` (hard
//! links to the store where it shares ROOT's filesystem, copies elsewhere), the root links
//! (`bin`, `lib`, ...) and what the transaction and system triggers make (`etc/`, `var/`).

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    blit::Blitter,
    engine::{EngineError, Moss, io_error, sync_filesystem},
    events::{Event, Phase},
    operations::Plan,
    transaction::update_root_links,
    triggers::TriggerRun,
};

/// What [`Moss::compose_into`] made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Composed {
    /// The directory holding the new tree.
    pub directory: PathBuf,
    /// Packages in the tree.
    pub packages: usize,
    /// Entries created under `usr/`.
    pub entries: u64,
    /// The triggers that ran, in order.
    pub triggers: Vec<TriggerRun>,
}

impl Moss {
    /// Fetch and unpack what `plan` needs, then write its whole tree into `directory` and run
    /// the triggers there. Nothing of this installation's states changes: no state is
    /// recorded and its `/usr` is untouched. `directory/usr` must not exist or be empty, so an
    /// existing system is never overwritten.
    pub async fn compose_into(
        &self,
        plan: &Plan,
        directory: &Path,
    ) -> Result<Composed, EngineError> {
        let usr = directory.join("usr");
        let root = &self.installation.paths().root;
        if fs::canonicalize(directory).ok() == fs::canonicalize(root).ok() {
            return Err(EngineError::InvalidRequest(format!(
                "{} is the installation itself; installer mode writes into another directory (drop --to to change this installation)",
                directory.display()
            )));
        }
        if let Ok(mut entries) = fs::read_dir(&usr) {
            if entries.next().is_some() {
                return Err(EngineError::InvalidRequest(format!(
                    "{} already holds files; installer mode composes into an empty directory (move it away first)",
                    usr.display()
                )));
            }
            fs::remove_dir(&usr).map_err(io_error("preparing the target", &usr))?;
        }
        fs::create_dir_all(directory).map_err(io_error("creating the target", directory))?;
        self.bring_into_store(plan).await?;
        let tree = self.compose(&plan.selections).await?;
        self.reporter.report(Event::PhaseStarted {
            phase: Phase::Blit,
            total: tree.len() as u64,
        });
        let store = self.store.clone();
        let (entries, tree) = {
            let usr = usr.clone();
            tokio::task::spawn_blocking(move || -> Result<_, EngineError> {
                let stats = Blitter::new(&store).full(&tree, &usr)?;
                Ok((stats.created, tree))
            })
            .await
            .map_err(|error| {
                EngineError::Other(format!("writing the tree was interrupted: {error}"))
            })??
        };
        self.reporter
            .report(Event::PhaseFinished { phase: Phase::Blit });
        update_root_links(directory)?;
        let triggers = self.run_triggers_in(directory, &tree).await?;
        sync_filesystem(&usr)?;
        Ok(Composed {
            directory: directory.to_path_buf(),
            packages: plan.selections.len(),
            entries,
            triggers,
        })
    }
}
