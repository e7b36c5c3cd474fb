//! Changes as data: every change a client can ask for, and what it did.
//!
//! Direct mode and `mossd` carry out a [`Change`] with the same [`Moss::perform`], so a change
//! behaves the same whether the CLI opened the installation itself or asked the daemon.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    engine::{EngineError, Moss},
    model::SystemModel,
    operations::{Plan, Target},
    state::Pruned,
    transaction::Switch,
};

/// A change to an installation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// Install packages by name or provider, and local stones.
    Install {
        /// What to install.
        targets: Vec<Target>,
    },
    /// Remove packages (and what only they needed).
    Remove {
        /// What to remove.
        packages: Vec<String>,
    },
    /// Bring installed packages to the newest the repositories offer.
    Sync {
        /// Refresh the repositories first.
        update: bool,
        /// Allow moving to older versions.
        allow_downgrade: bool,
    },
    /// Make the system exactly this system model (its text): its repositories are refreshed
    /// and used, its packages installed, everything else removed; on success it becomes
    /// `/etc/moss/system-model.kdl`.
    SyncModel {
        /// The model's KDL text.
        model: String,
        /// What names the model in errors (a file name; never opened).
        origin: String,
    },
    /// Refresh repository indexes (all active ones, or one).
    Refresh {
        /// Only this repository.
        repository: Option<String>,
    },
    /// Add a repository and fetch its index.
    RepoAdd {
        /// Repository id.
        name: String,
        /// Its index location.
        uri: String,
        /// Priority (higher wins).
        priority: u64,
        /// Free text.
        comment: String,
        /// Pinned minisign public keys; empty for an unsigned repository.
        keys: Vec<String>,
        /// `uri` is the base of a channel tree and this `version=V[,channel=C][,arch=A]` says
        /// which snapshot to follow (a root-index source).
        root_index: Option<String>,
    },
    /// Remove a repository.
    RepoRemove {
        /// Repository id.
        name: String,
    },
    /// Enable or disable a repository.
    RepoEnable {
        /// Repository id.
        name: String,
        /// Enable (true) or disable (false).
        enable: bool,
    },
    /// Make a recorded state active.
    StateActivate {
        /// State id.
        id: u64,
        /// Run no triggers.
        #[serde(default)]
        skip_triggers: bool,
        /// Leave the boot entries alone.
        #[serde(default)]
        skip_boot: bool,
    },
    /// Remove states older than the active one, keeping the newest `keep`.
    StatePrune {
        /// How many to keep.
        keep: u64,
        /// Also remove states newer than the active one (left behind by a rollback).
        #[serde(default)]
        include_newer: bool,
    },
    /// Remove given states.
    StateRemove {
        /// State ids.
        ids: Vec<u64>,
    },
    /// Verify the store and trees and repair what is damaged.
    Repair,
    /// Remove stored packages and files no state uses.
    CachePrune,
    /// Write the boot entries of the kept states (ESP and XBOOTLDR found by discovery unless
    /// given).
    BootSync {
        /// The ESP's directory.
        esp: Option<PathBuf>,
        /// The XBOOTLDR partition's directory.
        xbootldr: Option<PathBuf>,
    },
    /// Download packages of the repositories into the cache and unpack them into the store
    /// (nothing is installed): ready for a later install or sync.
    Download {
        /// Package ids (SHA-256) as the repositories list them.
        ids: Vec<String>,
    },
    /// Compose a build root: install packages into `directory` using this installation's
    /// repositories and store.
    BuildRoot {
        /// The build root to create or update.
        directory: PathBuf,
        /// What to install into it.
        packages: Vec<String>,
    },
}

impl Change {
    /// A short title for listings and logs.
    pub fn title(&self) -> &'static str {
        match self {
            Self::Install { .. } => "Install",
            Self::Remove { .. } => "Remove",
            Self::Sync { .. } | Self::SyncModel { .. } => "Sync",
            Self::Refresh { .. } => "Refresh",
            Self::RepoAdd { .. } => "Add repository",
            Self::RepoRemove { .. } => "Remove repository",
            Self::RepoEnable { enable: true, .. } => "Enable repository",
            Self::RepoEnable { enable: false, .. } => "Disable repository",
            Self::StateActivate { .. } => "Activate state",
            Self::StatePrune { .. } => "Prune states",
            Self::StateRemove { .. } => "Remove states",
            Self::Repair => "Repair",
            Self::CachePrune => "Prune cache",
            Self::Download { .. } => "Download",
            Self::BootSync { .. } => "Boot sync",
            Self::BuildRoot { .. } => "Compose build root",
        }
    }

    /// Whether the change can produce a plan to show before it runs.
    pub fn has_plan(&self) -> bool {
        matches!(
            self,
            Self::Install { .. } | Self::Remove { .. } | Self::Sync { .. } | Self::SyncModel { .. }
        )
    }
}

/// What a change did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// One sentence for people.
    pub message: String,
    /// The package plan, for install, remove and sync.
    pub plan: Option<Plan>,
    /// The state active afterwards, when the change switched states.
    pub state: Option<u64>,
    /// The state active before.
    pub previous: Option<u64>,
    /// States removed by a prune.
    pub removed_states: Vec<u64>,
    /// Files a download left in the cache.
    #[serde(default)]
    pub files: Vec<String>,
}

impl Outcome {
    fn message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }

    fn switched(switch: &Switch, plan: Option<Plan>) -> Self {
        Self {
            message: format!(
                "State {} is active ({} entries created, {} removed{})",
                switch.state,
                switch.blit.created,
                switch.blit.removed,
                switch
                    .reused
                    .map(|id| format!(", built from state {id}"))
                    .unwrap_or_default()
            ),
            plan,
            state: Some(switch.state),
            previous: switch.previous,
            ..Self::default()
        }
    }

    fn pruned(pruned: &Pruned) -> Self {
        Self {
            message: format!(
                "Removed {} states, {} unused packages, {} files",
                pruned.states.len(),
                pruned.packages,
                pruned.files
            ),
            removed_states: pruned.states.clone(),
            ..Self::default()
        }
    }
}

impl Moss {
    /// The plan of an install, remove or sync (nothing is changed; a sync with `update` plans
    /// against the indexes as they are).
    pub async fn plan_change(&self, change: &Change) -> Result<Option<Plan>, EngineError> {
        Ok(match change {
            Change::Install { targets } => Some(self.plan_install(targets).await?),
            Change::Remove { packages } => Some(self.plan_remove(packages).await?),
            Change::Sync {
                allow_downgrade, ..
            } => Some(self.plan_sync(*allow_downgrade).await?),
            Change::SyncModel { model, origin } => {
                let model = SystemModel::parse(Path::new(origin), model)?;
                // The model's repositories may be new: their indexes are fetched to plan.
                let _scope = self.model_scope(model.clone());
                self.refresh(None).await?;
                Some(self.plan_model_sync(&model).await?)
            }
            _ => None,
        })
    }

    /// Carry out a change.
    pub async fn perform(&self, change: &Change) -> Result<Outcome, EngineError> {
        if matches!(
            change,
            Change::Install { .. }
                | Change::Remove { .. }
                | Change::Sync { .. }
                | Change::RepoAdd { .. }
                | Change::RepoRemove { .. }
                | Change::RepoEnable { .. }
        ) {
            self.warn_if_modelled()?;
        }
        match change {
            Change::SyncModel { model, origin } => {
                let model = SystemModel::parse(Path::new(origin), model)?;
                let _scope = self.model_scope(model.clone());
                self.refresh(None).await?;
                self.cancellation.check()?;
                let plan = self.plan_model_sync(&model).await?;
                if plan.is_empty() {
                    // Nothing to install or remove: the model is still adopted.
                    model.save(&self.model_path())?;
                }
                self.execute_plan(plan, "Sync", "The system already matches the model")
                    .await
            }
            Change::Install { targets } => {
                let plan = self.plan_install(targets).await?;
                self.execute_plan(plan, "Install", "Everything requested is already installed")
                    .await
            }
            Change::Remove { packages } => {
                let plan = self.plan_remove(packages).await?;
                self.execute_plan(plan, "Remove", "Nothing to remove").await
            }
            Change::Sync {
                update,
                allow_downgrade,
            } => {
                if *update {
                    self.refresh(None).await?;
                }
                self.cancellation.check()?;
                let plan = self.plan_sync(*allow_downgrade).await?;
                self.execute_plan(plan, "Sync", "Everything is up to date")
                    .await
            }
            Change::Refresh { repository } => {
                self.refresh(repository.as_deref()).await?;
                Ok(Outcome::message(match repository {
                    Some(id) => format!("{id} refreshed"),
                    None => "Repositories refreshed".to_owned(),
                }))
            }
            Change::RepoAdd {
                name,
                uri,
                priority,
                comment,
                keys,
                root_index,
            } => {
                match root_index {
                    Some(spec) => {
                        self.add_root_index_repository(name, uri, spec, *priority, comment, keys)
                            .await?
                    }
                    None => {
                        self.add_repository(name, uri, *priority, comment, keys)
                            .await?
                    }
                }
                Ok(Outcome::message(format!("{name} added")))
            }
            Change::RepoRemove { name } => {
                self.remove_repository(name)?;
                Ok(Outcome::message(format!("{name} removed")))
            }
            Change::RepoEnable { name, enable } => {
                self.set_repository_active(name, *enable)?;
                Ok(Outcome::message(format!(
                    "{name} {}",
                    if *enable { "enabled" } else { "disabled" }
                )))
            }
            Change::StateActivate {
                id,
                skip_triggers,
                skip_boot,
            } => {
                let options = crate::transaction::ActivateOptions {
                    skip_triggers: *skip_triggers,
                    skip_boot: *skip_boot,
                };
                let switch = self.activate_with(*id, options).await?;
                let mut outcome = Outcome::switched(&switch, None);
                outcome.message = format!(
                    "State {} activated{}",
                    switch.state,
                    switch
                        .previous
                        .map(|previous| format!(" ({previous} archived)"))
                        .unwrap_or_default()
                );
                Ok(outcome)
            }
            Change::StatePrune {
                keep,
                include_newer,
            } => Ok(Outcome::pruned(
                &self
                    .prune_with(usize::try_from(*keep).unwrap_or(usize::MAX), *include_newer)
                    .await?,
            )),
            Change::StateRemove { ids } => Ok(Outcome::pruned(&self.remove_states(ids).await?)),
            Change::Repair => {
                let issues = self.verify().await?;
                if issues.is_empty() {
                    return Ok(Outcome::message("Verified: no problems found"));
                }
                self.repair(&issues).await?;
                Ok(Outcome::message(format!(
                    "Repaired {} problems",
                    issues.len()
                )))
            }
            Change::CachePrune => Ok(Outcome::pruned(&self.collect_garbage().await?)),
            Change::Download { ids } => self.download_ids(ids).await,
            Change::BootSync { esp, xbootldr } => {
                let mut config = crate::boot::BootConfig::load(&self.installation.paths().root)?;
                if esp.is_some() {
                    config.esp.clone_from(esp);
                }
                if xbootldr.is_some() {
                    config.xbootldr.clone_from(xbootldr);
                }
                let report = self.sync_boot(&config).await?;
                Ok(Outcome::message(format!(
                    "{} boot entries ({} files written, {} stale removed){}",
                    report.entries.len(),
                    report.written,
                    report.removed.len(),
                    report
                        .default
                        .map(|entry| format!("; default {entry}"))
                        .unwrap_or_default()
                )))
            }
            Change::BuildRoot {
                directory,
                packages,
            } => self.compose_build_root(directory, packages).await,
        }
    }

    async fn download_ids(&self, ids: &[String]) -> Result<Outcome, EngineError> {
        let available = self.available().await?;
        let mut fetch = Vec::new();
        for id in ids {
            let package = available
                .iter()
                .find(|package| package.meta.hash.as_deref() == Some(id.as_str()))
                .ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "no repository offers package {id}; refresh the repositories"
                    ))
                })?;
            fetch.push(crate::operations::Fetch {
                id: id.clone(),
                name: package.meta.name.clone(),
                url: package.url.clone(),
                size: package.meta.size,
                repository: package.repository.clone(),
            });
        }
        let downloaded = self.download(&fetch).await?;
        let files = downloaded
            .iter()
            .map(|(path, _, _)| path.display().to_string())
            .collect();
        self.cancellation.check()?;
        self.add_stones(downloaded).await?;
        Ok(Outcome {
            message: format!("{} packages downloaded and stored", fetch.len()),
            files,
            ..Outcome::default()
        })
    }

    async fn execute_plan(
        &self,
        plan: Plan,
        summary: &str,
        nothing: &str,
    ) -> Result<Outcome, EngineError> {
        if plan.is_empty() {
            let mut outcome = Outcome::message(nothing);
            outcome.plan = Some(plan);
            return Ok(outcome);
        }
        let switch = self.execute(&plan, summary).await?;
        Ok(Outcome::switched(&switch, Some(plan)))
    }
}
